import pytest

from mnist_utils.data import load_mnist


@pytest.fixture(scope="session")
def mnist():
    """The real MNIST, loaded once (`make test` fetches and verifies it first)."""
    return load_mnist()
