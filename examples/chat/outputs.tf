output "websocket_url" {
  description = "The chat's WebSocket URL."
  value       = module.websocket.websocket_url
}

output "demo_page_url" {
  description = "With `make dev` running in the repository (the local gateway serves the demo page and its JavaScript client, ES modules that browsers do not load from file://), open this in a browser: the demo page, pointed at this API."
  value       = "http://127.0.0.1:8080/?url=${urlencode(module.websocket.websocket_url)}"
}

output "publisher_function_name" {
  description = "Invoke it to post system messages to a room."
  value       = module.websocket.publisher_function_name
}
