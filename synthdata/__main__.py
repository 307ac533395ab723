"""``python -m synthdata`` (what ``accelerate launch -m synthdata ...`` runs in each process)."""

from synthdata.cli import main

main()
