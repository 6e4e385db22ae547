"""``python -m tcdn`` (also what ``torchrun -m tcdn`` runs)."""

from tcdn.cli import main

raise SystemExit(main())
