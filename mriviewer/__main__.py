import signal
import sys

from mriviewer.cli import main

# The guard keeps spawn-ed worker processes (decoding pool, DataLoader workers) and tools that
# import this module from running the command line again; `python -m mriviewer` and
# `torchrun -m mriviewer` run it.
if __name__ == "__main__":
    status = main()
    # The command has ended and chosen its status. A Ctrl-C arriving now (e.g. just as a run
    # finishes) must not cut the interpreter's clean-up short (worker pool, temporary files) and
    # turn the status into "killed by SIGINT".
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sys.exit(status)
