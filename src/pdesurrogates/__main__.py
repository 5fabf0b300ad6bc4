import sys

from pdesurrogates.cli import main

sys.exit(main())
