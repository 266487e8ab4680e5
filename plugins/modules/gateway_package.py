#!/usr/bin/python
# Copyright: durable.eda contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: gateway_package
short_description: Build the webhook gateway's Lambda zip, byte for byte reproducibly
description:
  - Zips the C(durable_eda_gateway) package (and an optional filter rules file) into the
    archive a Lambda function runs from.
  - The archive is reproducible (sorted entries, fixed timestamps and permissions), so an
    unchanged gateway gives an unchanged zip and C(amazon.aws.lambda) sees no code change.
    The file is only rewritten, and the task only reports a change, when its bytes differ.
author:
  - durable.eda contributors (@durable-eda)
version_added: 0.1.0
options:
  src:
    description: The C(durable_eda_gateway) package directory.
    type: path
    required: true
  dest:
    description: Where to write the zip.
    type: path
    required: true
  rules:
    description: A filter rules file (JSON) to ship as C(filter_rules.json) at the zip's root.
    type: path
"""

EXAMPLES = r"""
- name: Package the gateway
  durable.eda.gateway_package:
    src: "{{ playbook_dir }}/../gateway/durable_eda_gateway"
    dest: /tmp/durable-eda-gateway.zip
"""

RETURN = r"""
dest:
  description: The zip's path.
  returned: always
  type: str
code_sha256:
  description: Base64 SHA-256 of the zip, as Lambda reports it in C(CodeSha256).
  returned: always
  type: str
"""

import base64
import hashlib
import io
import os
import zipfile

from ansible.module_utils.basic import AnsibleModule

# 1980-01-01, the earliest time a zip entry can carry: no build time leaks into the bytes.
FIXED_TIME = (1980, 1, 1, 0, 0, 0)


def package_files(src: str) -> list[tuple[str, str]]:
    """(path on disk, name in the zip) of every .py file, in a stable order."""
    package = os.path.basename(os.path.normpath(src))
    found = []
    for name in sorted(os.listdir(src)):
        if name.endswith(".py"):
            found.append((os.path.join(src, name), f"{package}/{name}"))
    return found


def build_zip(files: list[tuple[str, str]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path, name in files:
            entry = zipfile.ZipInfo(name, date_time=FIXED_TIME)
            entry.external_attr = 0o644 << 16
            entry.compress_type = zipfile.ZIP_DEFLATED
            with open(path, "rb") as source:
                archive.writestr(entry, source.read())
    return buffer.getvalue()


def read_existing(dest: str) -> bytes | None:
    try:
        with open(dest, "rb") as existing:
            return existing.read()
    except FileNotFoundError:
        return None


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "src": {"type": "path", "required": True},
            "dest": {"type": "path", "required": True},
            "rules": {"type": "path"},
        },
        supports_check_mode=True,
    )
    src, dest, rules = module.params["src"], module.params["dest"], module.params["rules"]
    if not os.path.isfile(os.path.join(src, "lambda_function.py")):
        module.fail_json(msg=f"{src} is not the durable_eda_gateway package")
    files = package_files(src)
    if rules:
        files.append((rules, "filter_rules.json"))
    content = build_zip(files)
    changed = read_existing(dest) != content
    if changed and not module.check_mode:
        # Write then rename: an interrupted run never leaves a truncated zip behind.
        partial = f"{dest}.partial"
        with open(partial, "wb") as target:
            target.write(content)
        os.replace(partial, dest)
    digest = base64.b64encode(hashlib.sha256(content).digest()).decode()
    module.exit_json(changed=changed, dest=dest, code_sha256=digest)


if __name__ == "__main__":
    main()
