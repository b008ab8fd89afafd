import sys

from tfresnet.cli import main

sys.exit(main())
