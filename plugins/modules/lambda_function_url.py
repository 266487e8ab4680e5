#!/usr/bin/python
# Copyright: durable.eda contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: lambda_function_url
short_description: Manage an AWS Lambda function URL, and public access to it
description:
  - Creates, updates or deletes the function URL of a Lambda function (amazon.aws has no
    module for function URLs).
  - With O(auth_type=NONE) and O(public=true) it also adds the two resource policy statements
    AWS requires for anonymous callers (C(lambda:InvokeFunctionUrl) and C(lambda:InvokeFunction)
    via the function URL), and removes them when no longer wanted.
  - Idempotent; supports check mode.
author:
  - durable.eda contributors (@durable-eda)
version_added: 0.1.0
options:
  function_name:
    description: Name or ARN of the Lambda function.
    type: str
    required: true
  state:
    description: Whether the function URL should exist.
    type: str
    choices: [present, absent]
    default: present
  auth_type:
    description:
      - V(AWS_IAM) lets only IAM-signed requests through; V(NONE) leaves authentication to the
        function (the durable.eda gateway checks API keys or signatures itself).
    type: str
    choices: [AWS_IAM, NONE]
    default: AWS_IAM
  public:
    description: With O(auth_type=NONE), allow anonymous callers in the function's resource policy.
    type: bool
    default: true
  cors:
    description: CORS settings, as the Lambda API's C(Cors) structure (e.g. C(AllowOrigins)).
    type: dict
  invoke_mode:
    description: V(BUFFERED) or V(RESPONSE_STREAM).
    type: str
    choices: [BUFFERED, RESPONSE_STREAM]
    default: BUFFERED
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: Give the gateway function a public URL
  durable.eda.lambda_function_url:
    function_name: durable-eda-gateway
    auth_type: NONE
  register: url

- ansible.builtin.debug:
    msg: "POST webhooks to {{ url.function_url }}"
"""

RETURN = r"""
function_url:
  description: The function URL (empty when O(state=absent)).
  returned: always
  type: str
  sample: https://abcdefghijklmnop.lambda-url.us-east-1.on.aws/
function_arn:
  description: The function's ARN.
  returned: when O(state=present)
  type: str
auth_type:
  description: The URL's authorization type.
  returned: when O(state=present)
  type: str
"""

import contextlib
import json
from typing import Any

with contextlib.suppress(ImportError):  # AnsibleAWSModule reports a missing botocore itself
    import botocore

from ansible_collections.amazon.aws.plugins.module_utils.botocore import is_boto3_error_code
from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule

# Statement ids this module owns in the function's resource policy.
PUBLIC_STATEMENTS: dict[str, dict[str, Any]] = {
    "durable-eda-function-url-public": {
        "Action": "lambda:InvokeFunctionUrl",
        "FunctionUrlAuthType": "NONE",
    },
    "durable-eda-function-url-invoke": {
        "Action": "lambda:InvokeFunction",
        "InvokedViaFunctionUrl": True,
    },
}


def get_url_config(client: Any, module: AnsibleAWSModule) -> dict[str, Any] | None:
    try:
        return dict(client.get_function_url_config(FunctionName=module.params["function_name"]))
    except is_boto3_error_code("ResourceNotFoundException"):
        return None
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:  # pylint: disable=duplicate-except
        module.fail_json_aws(e, msg="reading the function URL")
    return None


def wanted_settings(module: AnsibleAWSModule) -> dict[str, Any]:
    settings = {"AuthType": module.params["auth_type"], "InvokeMode": module.params["invoke_mode"]}
    if module.params["cors"] is not None:
        settings["Cors"] = module.params["cors"]
    return settings


def differs(current: dict[str, Any], wanted: dict[str, Any]) -> bool:
    return any(current.get(key) != value for key, value in wanted.items())


def ensure_url(client: Any, module: AnsibleAWSModule) -> tuple[bool, dict[str, Any]]:
    name = module.params["function_name"]
    current = get_url_config(client, module)
    wanted = wanted_settings(module)
    if current is not None and not differs(current, wanted):
        return False, current
    if module.check_mode:
        return True, {**(current or {}), **wanted}
    try:
        if current is None:
            return True, dict(client.create_function_url_config(FunctionName=name, **wanted))
        return True, dict(client.update_function_url_config(FunctionName=name, **wanted))
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
        module.fail_json_aws(e, msg="writing the function URL")
    return False, {}


def policy_statement_ids(client: Any, module: AnsibleAWSModule) -> set[str]:
    try:
        policy = client.get_policy(FunctionName=module.params["function_name"])["Policy"]
    except is_boto3_error_code("ResourceNotFoundException"):
        return set()
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:  # pylint: disable=duplicate-except
        module.fail_json_aws(e, msg="reading the function's resource policy")
    return {str(s.get("Sid")) for s in json.loads(policy).get("Statement", [])}


def ensure_public_access(client: Any, module: AnsibleAWSModule, wanted: bool) -> bool:
    name = module.params["function_name"]
    present = policy_statement_ids(client, module) & set(PUBLIC_STATEMENTS)
    to_add = set(PUBLIC_STATEMENTS) - present if wanted else set()
    to_remove = present if not wanted else set()
    if module.check_mode or not (to_add or to_remove):
        return bool(to_add or to_remove)
    try:
        for sid in sorted(to_add):
            client.add_permission(
                FunctionName=name, StatementId=sid, Principal="*", **PUBLIC_STATEMENTS[sid]
            )
        for sid in sorted(to_remove):
            client.remove_permission(FunctionName=name, StatementId=sid)
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
        module.fail_json_aws(e, msg="updating the function's resource policy")
    return True


def delete_url(client: Any, module: AnsibleAWSModule) -> bool:
    changed = ensure_public_access(client, module, wanted=False)
    if get_url_config(client, module) is None:
        return changed
    if not module.check_mode:
        try:
            client.delete_function_url_config(FunctionName=module.params["function_name"])
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
            module.fail_json_aws(e, msg="deleting the function URL")
    return True


def main() -> None:
    module = AnsibleAWSModule(
        argument_spec={
            "function_name": {"type": "str", "required": True},
            "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
            "auth_type": {"type": "str", "choices": ["AWS_IAM", "NONE"], "default": "AWS_IAM"},
            "public": {"type": "bool", "default": True},
            "cors": {"type": "dict"},
            "invoke_mode": {
                "type": "str",
                "choices": ["BUFFERED", "RESPONSE_STREAM"],
                "default": "BUFFERED",
            },
        },
        supports_check_mode=True,
    )
    client = module.client("lambda")
    if module.params["state"] == "absent":
        module.exit_json(changed=delete_url(client, module), function_url="")
    url_changed, config = ensure_url(client, module)
    public = module.params["auth_type"] == "NONE" and module.params["public"]
    policy_changed = ensure_public_access(client, module, wanted=public)
    module.exit_json(
        changed=url_changed or policy_changed,
        function_url=config.get("FunctionUrl", ""),
        function_arn=config.get("FunctionArn", ""),
        auth_type=config.get("AuthType", module.params["auth_type"]),
    )


if __name__ == "__main__":
    main()
