"""waitfor: wait until a pod's dependencies are really ready, then exit 0 or exec a command."""
