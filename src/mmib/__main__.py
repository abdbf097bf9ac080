"""``python -m mmib``: the CLI, as launchers (torchrun, accelerate launch) call it."""

from mmib.cli import main

main()
