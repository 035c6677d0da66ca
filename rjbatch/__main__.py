import sys

from rjbatch.cli import main

sys.exit(main())
