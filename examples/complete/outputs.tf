output "websocket_url" {
  description = "Connect with `wscat -c '<this>?token=<JWT>'`."
  value       = module.websocket.websocket_url
}

output "management_endpoint" {
  description = "The @connections management API base URL."
  value       = module.websocket.management_endpoint
}

output "publisher_function_name" {
  description = "Invoke it to send from a backend."
  value       = module.websocket.publisher_function_name
}

output "publisher_invoke_policy_json" {
  description = "Attach to your backend's role to let it invoke the publisher."
  value       = module.websocket.publisher_invoke_policy_json
}

output "jwt_secret_arn" {
  description = "Secrets Manager secret holding the HS256 key that signs client tokens."
  value       = aws_secretsmanager_secret.jwt.arn
}

output "jwt_issuer" {
  description = "The `iss` client tokens must carry."
  value       = var.jwt_issuer
}

output "jwt_audience" {
  description = "The `aud` client tokens must carry."
  value       = var.jwt_audience
}

output "event_bus_name" {
  description = "EventBridge bus receiving lifecycle events."
  value       = module.websocket.event_bus_name
}

output "dynamodb_table_name" {
  description = "The connection table."
  value       = module.websocket.dynamodb_table_name
}

output "custom_domain_target" {
  description = "Alias target for the custom domain's DNS record (null without one)."
  value       = module.websocket.custom_domain_target
}

output "fanout_dlq_url" {
  description = "Dead-letter queue of the distributed fan-out: batches that failed every delivery attempt."
  value       = module.websocket.fanout_dlq_url
}
