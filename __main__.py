"""python -m rerankforge <command> ...  (same as the ``rerankforge`` console command)"""

import sys

from rerankforge.cli import main

sys.exit(main())
