"""Compress and Compare: track, compare and choose among compressed variants of a model.

    python app.py                        # the embedded demo (trains and compresses on first run)
    python app.py --config exp.yaml      # your experiment (config, experiment file, model-info
                                         # JSON of the original system, or a Tracker directory)
"""
import sys

from cnc.app.cli import main

if __name__ == "__main__":
    sys.exit(main())
