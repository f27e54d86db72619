"""`pod-agents inject`: add waitfor init containers and a logship sidecar to the workloads
in Kubernetes YAML, or take them out again, leaving everything else as it was written."""
