"""Where events go: the Elasticsearch sender and the dead-letter file."""
