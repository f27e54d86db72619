import pytest

# Private real servers (PostgreSQL, MariaDB, Redis, RabbitMQ) for the protocol tests.
from tests.integration.servers import (  # noqa: F401
    mariadb_factory,
    mariadb_server,
    postgres_factory,
    postgres_server,
    rabbitmq_server,
    redis_auth_server,
    redis_factory,
    redis_server,
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "/integration/" in str(item.path):
            item.add_marker(pytest.mark.integration)
