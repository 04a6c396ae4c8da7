"""``python -m darkgan`` (also what ``torchrun -m darkgan train ...`` runs)."""
import sys

from darkgan.cli import main

sys.exit(main())
