"""`python -m lab.bench [--quick|--full] [--out DIR]`: same as `lanalab bench`."""

import sys

from lab.commands.bench import main

sys.exit(main())
