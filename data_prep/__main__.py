"""python -m rerankforge.data_prep --config configs/data_prep/scifact.yaml [key=value ...]"""

import sys

from rerankforge.cli import main

sys.exit(main(["mine", *sys.argv[1:]]))
