"""`python -m services.cli`: the `riskwatch` command."""
from services.cli.main import main

main()
