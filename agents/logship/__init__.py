"""logship: tail log files on a shared volume and bulk-ship every line to Elasticsearch."""
