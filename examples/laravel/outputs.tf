output "pusher_env" {
  description = "Paste into Laravel's .env, then fill PUSHER_APP_SECRET with the command in the comment above it."
  value       = module.websocket.pusher_env
}

output "pusher_secret_command" {
  description = "Prints the app secret (PUSHER_APP_SECRET) from SSM."
  value       = "aws ssm get-parameter --region ${var.region} --with-decryption --name ${aws_ssm_parameter.pusher_secret.name} --query Parameter.Value --output text"
}

output "echo_snippet" {
  description = "resources/js/echo.js for Laravel Echo with pusher-js."
  value       = <<-EOT
    import Echo from 'laravel-echo';
    import Pusher from 'pusher-js';
    window.Pusher = Pusher;

    window.Echo = new Echo({
        broadcaster: 'pusher',
        key: import.meta.env.VITE_PUSHER_APP_KEY,
        cluster: '',
        wsHost: import.meta.env.VITE_PUSHER_HOST,
        wsPort: import.meta.env.VITE_PUSHER_PORT,
        wssPort: import.meta.env.VITE_PUSHER_PORT,
        forceTLS: true,
        enabledTransports: ['ws', 'wss'],
        // pusher-js pings after the lower of this and the server's
        // activity_timeout (pusher.activity_timeout, 120 s by default):
        // raise both to ping less often.
        activityTimeout: 120000,
    });
  EOT
}

output "pusher_host" {
  description = "PUSHER_HOST: where Echo connects (wss://HOST/app/KEY) and the broadcaster posts (https://HOST/apps/ID/events)."
  value       = module.websocket.pusher_host
}

output "pusher_app_id" {
  description = "PUSHER_APP_ID."
  value       = module.websocket.pusher_app_id
}

output "pusher_key" {
  description = "PUSHER_APP_KEY."
  value       = module.websocket.pusher_key
}

output "pusher_cloudfront_domain_name" {
  description = "Target of the DNS record for `alias`, if you set one."
  value       = module.websocket.pusher_cloudfront_domain_name
}
