"""`python -m dllmrl_core.loop CFG.yaml [key.path=value ...]`: the single-process RL loop.

The loop lives in `dllmrl_core/drive/loop.py`; this module keeps the documented command.
"""

import sys

from dllmrl_core.drive.loop import main

if __name__ == "__main__":
    sys.exit(main())
