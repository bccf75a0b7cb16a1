"""Generated gRPC and protobuf code for dynamo_gateway.v1 (see scripts/generate_protos.py)."""
