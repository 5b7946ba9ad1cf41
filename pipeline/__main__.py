"""Entry point of `python -m pipeline` (it leaves through `cli.leave`: no interpreter shutdown after the command)."""

from pipeline.cli import leave, main

leave(main())
