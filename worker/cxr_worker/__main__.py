"""`python -m cxr_worker`: the EC2 infer worker's supervisor."""
import sys

from cxr_worker.supervisor import main

sys.exit(main())
