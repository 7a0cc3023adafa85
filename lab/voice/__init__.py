"""Voice over LANA: the host side of the PF_LANA voice call (issue 4).

signals  test audio (tones, a sweep, a voiced speech-like segment) and WAV files
analysis alignment, correlation and SNR of received audio; per-frame gap analysis
scenario the call between two VMs with stack changes while audio flows
"""
