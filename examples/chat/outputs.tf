output "websocket_url" {
  description = "The chat's WebSocket URL."
  value       = module.websocket.websocket_url
}

output "demo_page_url" {
  description = "Open this in a browser: the repository's demo page, pointed at this API."
  value       = "file://${abspath("${path.module}/../../cmd/wslocal/web/index.html")}?url=${urlencode(module.websocket.websocket_url)}"
}

output "publisher_function_name" {
  description = "Invoke it to post system messages to a room."
  value       = module.websocket.publisher_function_name
}
