"""What the stand-in claims by default: the Elasticsearch version, the body limit and
the product header every ES response carries.
"""

DEFAULT_VERSION = "8.15.0"
DEFAULT_MAX_BODY_BYTES = 100 * 1024 * 1024  # http.max_content_length
PRODUCT_HEADER = {"X-Elastic-Product": "Elasticsearch"}
