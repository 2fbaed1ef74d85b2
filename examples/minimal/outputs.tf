output "websocket_url" {
  description = "Connect with `wscat -c <this>`."
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
