"""durable.eda's webhook gateway: authenticate, filter and forward webhooks to SQS.

One core (`core.Gateway`) with two thin entry points: `lambda_function.handler` for AWS
Lambda and `service` for a local HTTP service. At run time it needs only the standard
library and boto3, which is what the Lambda Python runtime provides.
"""
