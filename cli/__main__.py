"""`python -m fleetsim.cli` runs the fleetsim command line."""

from .main import main

main()
