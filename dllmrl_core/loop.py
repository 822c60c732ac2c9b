"""`python -m dllmrl_core.loop CFG.yaml [key.path=value ...]`: the single-process RL loop.

The loop lives in `dllmrl_core/drive/loop.py`; this module keeps the documented command. It imports
nothing else unless run as the command: each verifier process (`dllmrl_core/verify/pool.py`) imports
the main module again, and should not pay for torch.
"""

import sys

if __name__ == "__main__":
    from dllmrl_core.drive.loop import main

    sys.exit(main())
