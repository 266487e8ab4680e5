"""The Lambda entry point needs only what the Lambda Python runtime has: stdlib and boto3."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

# boto3 and what it pulls in, all part of the Lambda Python runtime.
LAMBDA_RUNTIME = {
    "boto3",
    "botocore",
    "s3transfer",
    "jmespath",
    "dateutil",
    "urllib3",
    "six",
    "certifi",
}

PROBE = """
import json, sys
before = {name.split(".")[0] for name in sys.modules}
from durable_eda_gateway import lambda_function
after = {name.split(".")[0] for name in sys.modules}
new = after - before - set(sys.stdlib_module_names)
print(json.dumps(sorted(n for n in new if not n.startswith("__"))))  # __mp_main__: an alias
"""


def test_importing_the_handler_loads_nothing_but_boto3_and_the_gateway(
    project_root: Path,
) -> None:
    result = subprocess.run(
        [sys.executable, "-c", PROBE],
        env={**os.environ, "PYTHONPATH": str(project_root / "gateway")},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert set(json.loads(result.stdout)) - LAMBDA_RUNTIME == {"durable_eda_gateway"}
