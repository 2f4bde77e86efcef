import sys

from modelport.cli import main

sys.exit(main())
