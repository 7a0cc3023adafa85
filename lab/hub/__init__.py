"""The bootcamp server: JupyterHub for a class roster (`lanalab serve`).

Division of labour: `roster` reads the instructor's class list and keeps the accounts
(participant id, role, unix uid, hashed token); `workspace` gives each participant a
folder of their own with the notebooks and exercises; `auth` and `spawner` are the
JupyterHub classes that log participants in and start their JupyterLab under their own
uid; `proxy` installs JupyterHub's proxy from the npm registry; `config` writes the hub's
configuration; `server` starts it.
"""
