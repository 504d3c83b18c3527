import sys

from .cli import main

# The guard keeps spawn-ed worker processes (decoding pool, DataLoader workers) and tools that
# import this module from running the command line again; `python -m mriviewer` and
# `torchrun -m mriviewer` run it.
if __name__ == "__main__":
    sys.exit(main())
