"""What both official-SDK test files share: the server run.sh started, and a client of it."""

import os

import pytest

from onceonly import OnceOnly

BASE_URL = os.environ["ONCEONLY_TEST_BASE_URL"]
API_KEY = os.environ["ONCEONLY_TEST_API_KEY"]


@pytest.fixture
def client():
    c = OnceOnly(api_key=API_KEY, base_url=BASE_URL, timeout=10.0)
    yield c
    c.close()
