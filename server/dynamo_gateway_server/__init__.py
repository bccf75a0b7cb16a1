"""dynamo-gateway server: DynamoDB's data plane behind typed gRPC contracts."""
