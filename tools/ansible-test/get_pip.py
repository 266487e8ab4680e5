"""Stand-in for get-pip.py, which ansible-test downloads from a host this machine cannot reach.

ansible-test bootstraps pip into each of its sanity virtual environments by running
~/.ansible/test/cache/get_pip_<version>.py with pip's install arguments; tools/sanity.sh puts
this file there. It installs the same pip from the standard library's ensurepip and the package
index pip is configured with (versions locked by tests/sanity/constraints.txt).
"""

from __future__ import annotations

import subprocess
import sys

# get-pip.py's own options; pip install does not know them.
GET_PIP_OPTIONS = frozenset({"--no-setuptools", "--no-wheel"})


def main() -> None:
    subprocess.run(
        [sys.executable, "-m", "ensurepip", "--default-pip"],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    pip_arguments = [argument for argument in sys.argv[1:] if argument not in GET_PIP_OPTIONS]
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", *pip_arguments], check=True)
    if "--no-setuptools" in sys.argv:
        # ensurepip brings setuptools on Python 3.11; get-pip.py would not have installed it.
        subprocess.run(
            [sys.executable, "-m", "pip", "uninstall", "--quiet", "--yes", "setuptools"],
            check=True,
        )


if __name__ == "__main__":
    main()
