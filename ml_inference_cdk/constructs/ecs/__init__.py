"""ECS Fargate: the inference service, its load balancer, exposure, access logs and validation."""
