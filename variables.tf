################################################################################
# General
################################################################################

variable "name" {
  description = "Name prefix of every resource (API, table, functions, roles, queues, rules, log groups). 3 to 40 letters, digits, `-` and `_`: the table is named `name` (DynamoDB needs at least 3 characters) and the longest derived names (`<name>-authorizer` for a function, `<name>-cleanup` for the schedule rule, `<name>-fanout-dlq` for the queue) must fit AWS's 64-character limits. IAM role names, global to the account, add the region (`<name>-<function>-<region>`) so the same name works in two regions, and are cut to 64 characters with a hash when longer."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9_-]{3,40}$", var.name))
    error_message = "The name must be 3 to 40 characters of letters, digits, '-' or '_': it is the DynamoDB table name (at least 3 characters) and prefixes Lambda function, IAM role, SQS queue and EventBridge rule names (such as <name>-authorizer), which AWS limits to 64 characters."
  }
}

variable "tags" {
  description = "Tags applied to every resource that supports them."
  type        = map(string)
  default     = {}
  nullable    = false

  validation {
    condition     = length(var.tags) <= 50 && alltrue([for k, v in var.tags : length(k) >= 1 && length(k) <= 128 && length(v) <= 256 && !startswith(lower(k), "aws:")])
    error_message = "The tags may be at most 50, with keys of 1 to 128 characters not starting with aws: (reserved by AWS) and values of at most 256 characters, as AWS requires."
  }
}

variable "log_level" {
  description = "Log level of the Lambda functions (`WS_LOG_LEVEL`): `debug`, `info`, `warn` or `error`."
  type        = string
  default     = "info"
  nullable    = false

  validation {
    condition     = contains(["debug", "info", "warn", "error"], var.log_level)
    error_message = "The log_level must be one of: debug, info, warn, error."
  }
}

variable "log_retention_in_days" {
  description = "Retention of the CloudWatch log groups (API access logs and each function's logs), in days. One of the values CloudWatch accepts; `0` keeps logs forever."
  type        = number
  default     = 30
  nullable    = false

  validation {
    condition     = contains([0, 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_in_days)
    error_message = "The log_retention_in_days must be a value CloudWatch Logs accepts: 0 (never expire), 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288 or 3653."
  }
}

variable "cloudwatch_logs_kms_key_arn" {
  description = "ARN of a KMS key that encrypts the CloudWatch log groups. `null` uses CloudWatch's default encryption. The key policy must allow the CloudWatch Logs service principal."
  type        = string
  default     = null

  validation {
    condition     = var.cloudwatch_logs_kms_key_arn == null || can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/[A-Za-z0-9-]+$", coalesce(var.cloudwatch_logs_kms_key_arn, "-")))
    error_message = "The cloudwatch_logs_kms_key_arn must be a KMS key ARN (arn:aws:kms:REGION:ACCOUNT:key/ID) or null."
  }
}

################################################################################
# API Gateway
################################################################################

variable "stage_name" {
  description = "Name of the WebSocket API stage; it is the last path segment of the wss URL and of the `@connections` endpoint."
  type        = string
  default     = "live"
  nullable    = false

  validation {
    condition     = can(regex("^[A-Za-z0-9_-]{1,128}$", var.stage_name))
    error_message = "The stage_name must be 1 to 128 letters, digits, '-' or '_'."
  }
}

variable "throttling_burst_limit" {
  description = "Default route throttling burst limit of the stage (requests), a whole number >= 1 (`0` would refuse every request, `$connect` included, with 429). API Gateway's account limit still applies."
  type        = number
  default     = 500
  nullable    = false

  validation {
    condition     = var.throttling_burst_limit >= 1 && var.throttling_burst_limit <= 2147483647 && floor(var.throttling_burst_limit) == var.throttling_burst_limit
    error_message = "The throttling_burst_limit must be a whole number from 1 to 2147483647 (API Gateway's is a 32-bit integer; a larger number would wrap around): 0 lets no request through (every $connect and frame answers 429 Too Many Requests). To stop traffic, remove the stage or the routes instead."
  }
}

variable "throttling_rate_limit" {
  description = "Default route throttling rate limit of the stage (requests per second), >= 1 (`0` would refuse every request, `$connect` included, with 429)."
  type        = number
  default     = 1000
  nullable    = false

  validation {
    condition     = var.throttling_rate_limit >= 1
    error_message = "The throttling_rate_limit must be >= 1 request per second: 0 lets no request through (every $connect and frame answers 429 Too Many Requests). To stop traffic, remove the stage or the routes instead."
  }
}

variable "detailed_metrics_enabled" {
  description = "Whether the stage publishes per-route CloudWatch metrics (billed as custom metrics)."
  type        = bool
  default     = false
  nullable    = false
}

variable "access_logs_enabled" {
  description = "Whether the stage writes JSON access logs to its own CloudWatch log group. API Gateway refuses to enable them (\"CloudWatch Logs role ARN must be set in account settings to enable logging\") until its account-level CloudWatch Logs role is set, once per account and region: set it yourself, let this module set it with `create_api_gateway_cloudwatch_role = true`, or turn access logs off."
  type        = bool
  default     = true
  nullable    = false
}

variable "create_api_gateway_cloudwatch_role" {
  description = <<-EOT
    WARNING: changes an account-wide, region-wide setting. When `true`, the module creates an IAM role that API Gateway assumes to write logs
    (`<name>-apigateway-logs-<region>`, trusted by `apigateway.amazonaws.com`, allowed only the CloudWatch Logs actions API Gateway uses, on this account's log groups in this region)
    and points API Gateway's account settings (`aws_api_gateway_account`) at it. That setting is shared by every REST, HTTP and WebSocket API of the account in the region:
    turning this on replaces whatever role is set there today, and two configurations that both manage it overwrite each other. Use it only where nothing else manages
    that setting (for example a fresh account); otherwise set the role once, outside this module. Default `false`: the module never touches account settings.
    DESTROY: destroying this module (or turning this off) deletes the role, and then, with hashicorp/aws v5 (unless the provider's `reset_on_delete` applies), the account
    setting keeps pointing at the deleted role, so every API of the region stops writing CloudWatch logs; with v6 the setting is reset to none for every API of the region.
    Either way every other API in the region loses its logging role. Recommended: manage this role and `aws_api_gateway_account` once per account and region in a
    long-lived stack of its own (account baseline), not in per-API stacks that come and go, and leave this `false`.
  EOT
  type        = bool
  default     = false
  nullable    = false
}

variable "routes" {
  description = <<-EOT
    Custom routes, keyed by route key (the value of the frame's `action` field; `$request.body.action` selects the route).
    `handler`: `websocket` (default, the built-in websocket Lambda, which has no code for your route: it raises a `websocket.message` lifecycle event with
    `routeKey` and `body` on the `event_bus` and replies with an empty body, so it needs `event_bus` set; consume the events with an EventBridge rule)
    or `lambda` (integrate AWS_PROXY with your function; set `function_arn`, and the module adds the `aws_lambda_permission` that lets this API invoke it for that route).
    `two_way` (default `true`) adds a `$default` route response so the function's response body goes back to the sender.
    Frames whose action matches no route go to `$default` (the built-in actions: subscribe, unsubscribe, publish, ping, whoami, history), whose names a route key may not take.
  EOT
  type = map(object({
    handler      = optional(string, "websocket")
    function_arn = optional(string)
    two_way      = optional(bool, true)
  }))
  default  = {}
  nullable = false

  validation {
    condition     = alltrue([for k in keys(var.routes) : !startswith(k, "$")])
    error_message = "The routes keys must not start with '$': $connect, $disconnect and $default are the module's routes, and API Gateway reserves the '$' prefix for its own route keys. Use another route key (the frame's action value)."
  }

  # A route named after a protocol v1 action would take its frames away from
  # $default, and clients (clients/js) would get no answer.
  validation {
    condition     = alltrue([for k in keys(var.routes) : !contains(["subscribe", "unsubscribe", "publish", "ping", "whoami", "history"], k)])
    error_message = "The routes keys must not be a protocol v1 action (subscribe, unsubscribe, publish, ping, whoami, history): $default answers those. Use another route key."
  }

  validation {
    condition     = alltrue([for k in keys(var.routes) : can(regex("^[^\\s*?]{1,128}$", k))])
    error_message = "Each routes key must be 1 to 128 characters without whitespace, '*' or '?' (in the Lambda permission's source ARN, execution ARN/stage/route key, those are wildcards that would let the stage invoke the function for other routes)."
  }

  validation {
    condition     = alltrue([for r in values(var.routes) : contains(["websocket", "lambda"], r.handler)])
    error_message = "Each routes[*].handler must be websocket (the built-in function) or lambda (your function_arn)."
  }

  validation {
    condition = alltrue([
      for r in values(var.routes) : r.handler != "lambda" || can(regex("^arn:aws[a-z-]*:lambda:[a-z0-9-]+:[0-9]{12}:function:[A-Za-z0-9_-]+(:[A-Za-z0-9$_-]+)?$", r.function_arn))
    ])
    error_message = "A route with handler = \"lambda\" needs function_arn set to a Lambda function ARN such as arn:aws:lambda:eu-west-1:123456789012:function:my-handler (optionally with :alias)."
  }

  validation {
    condition     = alltrue([for r in values(var.routes) : r.handler == "lambda" || r.function_arn == null])
    error_message = "A routes[*].function_arn is only used with handler = \"lambda\"; set handler = \"lambda\" or remove function_arn."
  }
}

################################################################################
# Authorizer
################################################################################

variable "authorizer" {
  description = <<-EOT
    Authorizer of the `$connect` route (a REQUEST authorizer runs on `$connect` only).
    `mode`: `none` (anyone may connect), `jwt` (the module's built-in JWT authorizer Lambda) or `lambda` (your own authorizer; set `function_arn`).
    `identity_sources`: where the token is read from (default the `token` query string parameter), each `route.request.querystring.NAME`, `route.request.header.NAME` or `context.NAME` (with mode `jwt` the first must be a query string or header; stage variables are refused: the stage defines none);
    a connection missing one is rejected with 401 before any Lambda runs. The built-in authorizer verifies the token of the first one (`WS_JWT_IDENTITY_SOURCE`).
    `jwt`: the key comes from exactly one source: `secret_ssm_parameter` (SSM SecureString name or ARN, HS256 secret), `secret_arn` (Secrets Manager, HS256),
    `public_key` (PEM or JWKS JSON, RS256/ES256, inline in the function's environment, so at most 4 KB with the other variables: put larger keys in SSM or Secrets Manager),
    `public_key_ssm_parameter`, `public_key_secret_arn`, `jwks_url` (an `https://` JWKS endpoint such as Amazon Cognito's, Auth0's, Okta's or Entra ID's `jwks_uri`;
    fetched at cold start and again on an unknown `kid`, so rotated keys are picked up; `WS_JWT_JWKS_URL`), or the sensitive variable `authorizer_jwt_secret`.
    `kms_key_arn` is the customer managed key that encrypts that parameter or secret, if any (the function gets `kms:Decrypt` on it).
    `issuer` and `audience` are checked when set (with `jwks_url`, `issuer` and one of `audience` or `token_use` are required: a provider's keys sign other tenants' and apps' tokens too); `user_claim` (default `sub`) becomes the `userId` context key and `channels_claim` (default `channels`)
    becomes the `channels` context key (comma-separated glob patterns of the private-* channels the user may join).
    `leeway_seconds` (default 5, 0 to 300) is the clock skew allowed on `exp`, `nbf` and `iat` (`WS_JWT_LEEWAY`). `token_use` (`id` or `access`, for Amazon Cognito user pools)
    requires the token's `token_use` claim to be that value (`WS_JWT_TOKEN_USE`); unset, the claim is not checked.
    A `lambda` authorizer must return the same context keys: `userId` (string) and `channels` (comma-separated string).
    The `jwt` settings (and `authorizer_jwt_secret`) are refused at plan outside mode `jwt`, where nothing would read them.
  EOT
  type = object({
    mode             = optional(string, "none")
    identity_sources = optional(list(string), ["route.request.querystring.token"])
    function_arn     = optional(string)
    jwt = optional(object({
      secret_ssm_parameter     = optional(string)
      secret_arn               = optional(string)
      public_key               = optional(string)
      public_key_ssm_parameter = optional(string)
      public_key_secret_arn    = optional(string)
      kms_key_arn              = optional(string)
      issuer                   = optional(string)
      audience                 = optional(string)
      user_claim               = optional(string, "sub")
      channels_claim           = optional(string, "channels")
      jwks_url                 = optional(string)
      leeway_seconds           = optional(number, 5)
      token_use                = optional(string)
    }), {})
  })
  default  = {}
  nullable = false

  validation {
    condition     = contains(["none", "jwt", "lambda"], var.authorizer.mode)
    error_message = "The authorizer.mode must be one of: none, jwt, lambda."
  }

  validation {
    condition     = var.authorizer.mode != "lambda" || can(regex("^arn:aws[a-z-]*:lambda:[a-z0-9-]+:[0-9]{12}:function:[A-Za-z0-9_-]+(:[A-Za-z0-9$_-]+)?$", var.authorizer.function_arn))
    error_message = "The authorizer mode \"lambda\" needs authorizer.function_arn set to your authorizer's Lambda function ARN (arn:aws:lambda:REGION:ACCOUNT:function:NAME)."
  }

  validation {
    condition     = var.authorizer.mode == "lambda" || var.authorizer.function_arn == null
    error_message = "The authorizer.function_arn is only used with mode \"lambda\"; remove it or set mode = \"lambda\"."
  }

  validation {
    condition = length([
      for v in [var.authorizer.jwt.secret_ssm_parameter, var.authorizer.jwt.secret_arn, var.authorizer.jwt.public_key, var.authorizer.jwt.public_key_ssm_parameter, var.authorizer.jwt.public_key_secret_arn, var.authorizer.jwt.jwks_url] : v if v != null
    ]) <= 1
    error_message = "The authorizer.jwt key must come from exactly one source: set only one of secret_ssm_parameter, secret_arn, public_key, public_key_ssm_parameter, public_key_secret_arn, jwks_url (or the authorizer_jwt_secret variable)."
  }

  # The key travels in the function's environment, which Lambda limits to
  # 4 KB for all variables together (the lambda function's precondition
  # checks the total).
  validation {
    condition     = var.authorizer.jwt.public_key == null || length(coalesce(var.authorizer.jwt.public_key, " ")) <= 3072
    error_message = "The authorizer.jwt.public_key is inline in the authorizer function's environment, which Lambda limits to 4 KB for all its variables together; this key is longer than the 3072 characters the module allows there. Store the PEM or JWKS in an SSM SecureString parameter (authorizer.jwt.public_key_ssm_parameter) or in Secrets Manager (authorizer.jwt.public_key_secret_arn), or give the issuer's JWKS endpoint (authorizer.jwt.jwks_url)."
  }

  validation {
    condition     = var.authorizer.jwt.jwks_url == null || can(regex("^https://[^\\s/?#@]+(/[^\\s]*)?$", coalesce(var.authorizer.jwt.jwks_url, "-")))
    error_message = "The authorizer.jwt.jwks_url must be an https:// URL without credentials or spaces, such as https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbCdEf123/.well-known/jwks.json (plain http is refused: the keys decide who may connect)."
  }

  # A provider's JWKS signs the tokens of all its tenants or app clients
  # (Entra ID's common keys, every app client and token type of a Cognito
  # pool): a signature alone does not say the token is for this API.
  validation {
    condition     = var.authorizer.jwt.jwks_url == null || (var.authorizer.jwt.issuer != null && (var.authorizer.jwt.audience != null || var.authorizer.jwt.token_use != null))
    error_message = "The authorizer.jwt.jwks_url needs issuer, and audience or token_use: a provider's keys sign the tokens of all its tenants and app clients, so the signature alone does not say a token is meant for this API (for Amazon Cognito: issuer https://cognito-idp.REGION.amazonaws.com/POOL_ID, audience the app client id, token_use id or access)."
  }

  validation {
    condition     = var.authorizer.jwt.leeway_seconds != null && try(var.authorizer.jwt.leeway_seconds >= 0 && var.authorizer.jwt.leeway_seconds <= 300 && floor(var.authorizer.jwt.leeway_seconds) == var.authorizer.jwt.leeway_seconds, false)
    error_message = "The authorizer.jwt.leeway_seconds must be a whole number of seconds from 0 to 300 (default 5): the clock skew allowed when checking exp, nbf and iat. More than a few minutes would accept tokens long expired."
  }

  validation {
    condition     = var.authorizer.jwt.kms_key_arn == null || can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/[A-Za-z0-9-]+$", coalesce(var.authorizer.jwt.kms_key_arn, "-")))
    error_message = "The authorizer.jwt.kms_key_arn must be a KMS key ARN (arn:aws:kms:REGION:ACCOUNT:key/ID) or null: it becomes the Resource of the function's kms:Decrypt."
  }

  validation {
    condition     = var.authorizer.jwt.token_use == null || contains(["id", "access"], coalesce(var.authorizer.jwt.token_use, "-"))
    error_message = "The authorizer.jwt.token_use must be \"id\" (Amazon Cognito ID tokens) or \"access\" (Cognito access tokens), or unset to skip the token_use check."
  }

  # A WebSocket REQUEST authorizer's identity sources: request parameters
  # (route.request.(querystring|header).NAME) and context variables
  # (context.NAME), as API Gateway's CreateAuthorizer takes them. Stage
  # variables are the other kind it takes, but this module's stage has none:
  # such a source would be empty on every request, and API Gateway refuses a
  # connection whose identity sources are not all present.
  validation {
    condition     = length(var.authorizer.identity_sources) > 0 && alltrue([for s in var.authorizer.identity_sources : can(regex("^(route\\.request\\.(querystring|header)|context|stageVariables)\\.[a-zA-Z0-9._-]+$", s))])
    error_message = "The authorizer.identity_sources must be a non-empty list of route.request.querystring.NAME, route.request.header.NAME or context.NAME, NAME made of letters, digits, '.', '_' or '-' (API Gateway's patterns), for example [\"route.request.querystring.token\"] or [\"route.request.header.Authorization\"]."
  }

  validation {
    condition     = alltrue([for s in var.authorizer.identity_sources : !startswith(s, "stageVariables.")])
    error_message = "The authorizer.identity_sources cannot name a stage variable (stageVariables.NAME): this module's stage defines none, so API Gateway would find the source empty and refuse every connection with 401. Use route.request.querystring.NAME, route.request.header.NAME or context.NAME."
  }

  # The built-in authorizer reads its token from the first identity source,
  # which must therefore be a request parameter the client sends.
  validation {
    condition     = var.authorizer.mode != "jwt" || can(regex("^route\\.request\\.(querystring|header)\\.", try(var.authorizer.identity_sources[0], "")))
    error_message = "With authorizer.mode = \"jwt\", the first of authorizer.identity_sources is where the built-in authorizer reads the token: it must be route.request.querystring.NAME or route.request.header.NAME (context.NAME sources may follow it)."
  }

  validation {
    condition = alltrue([
      for v in [var.authorizer.jwt.secret_ssm_parameter, var.authorizer.jwt.public_key_ssm_parameter] : v == null || can(regex("^(arn:aws[a-z-]*:ssm:[a-z0-9-]+:[0-9]{12}:parameter/[a-zA-Z0-9_.-]+(/[a-zA-Z0-9_.-]+)*|[a-zA-Z0-9_.-]+|(/[a-zA-Z0-9_.-]+)+)$", v))
    ])
    error_message = "The authorizer.jwt.secret_ssm_parameter and public_key_ssm_parameter must be SSM parameter names (such as /myapp/jwt-secret: letters, digits, '_', '.' or '-', with '/' before each level of a hierarchy) or ARNs (arn:aws:ssm:REGION:ACCOUNT:parameter/NAME), without wildcards or spaces: each is the Resource of the authorizer's ssm:GetParameter."
  }

  validation {
    condition = alltrue([
      for v in [var.authorizer.jwt.secret_arn, var.authorizer.jwt.public_key_secret_arn] : v == null || can(regex("^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:[A-Za-z0-9/_+=.@-]+-[A-Za-z0-9]{6}$", v))
    ])
    error_message = "The authorizer.jwt.secret_arn and public_key_secret_arn must be complete Secrets Manager secret ARNs, with the six characters Secrets Manager adds to the name (arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME-AbCdEf): the ARN is the Resource of the function's secretsmanager:GetSecretValue, which IAM matches against the complete ARN."
  }

  validation {
    condition = alltrue([
      for v in [var.authorizer.jwt.secret_ssm_parameter, var.authorizer.jwt.secret_arn, var.authorizer.jwt.public_key, var.authorizer.jwt.public_key_ssm_parameter, var.authorizer.jwt.public_key_secret_arn, var.authorizer.jwt.jwks_url, var.authorizer.jwt.issuer, var.authorizer.jwt.audience, var.authorizer.jwt.kms_key_arn, var.authorizer.jwt.user_claim, var.authorizer.jwt.channels_claim] : v == null || trimspace(coalesce(v, " ")) != ""
    ])
    error_message = "An authorizer.jwt setting is an empty string: leave it unset (null) instead. An empty key source would count as the one key source and fail at cold start; an empty user_claim or channels_claim would quietly read sub or channels."
  }

  # The inline key is PEM or JWKS JSON; anything else fails every cold start.
  validation {
    condition     = var.authorizer.jwt.public_key == null || can(regex("^\\s*(-----BEGIN |\\{)", coalesce(var.authorizer.jwt.public_key, "-")))
    error_message = "The authorizer.jwt.public_key must be a PEM public key (-----BEGIN PUBLIC KEY-----, or a certificate) or JWKS JSON ({\"keys\":[...]}): the authorizer parses it at cold start."
  }
}

variable "authorizer_jwt_secret" {
  description = "HS256 secret of the built-in JWT authorizer, given inline (kept out of plan output, but stored in state and in the function's environment). Prefer `authorizer.jwt.secret_ssm_parameter` or `authorizer.jwt.secret_arn`. Counts as the one key source of mode `jwt`."
  type        = string
  default     = null
  sensitive   = true

  # As the authorizer checks at cold start (lambda/auth): a shorter HS256
  # secret can be brute-forced from one token.
  validation {
    condition     = var.authorizer_jwt_secret == null || length(coalesce(var.authorizer_jwt_secret, "-")) >= 32
    error_message = "The authorizer_jwt_secret must be at least 32 bytes (the built-in authorizer refuses a shorter HS256 secret at cold start): generate one with `openssl rand -hex 32`, and prefer authorizer.jwt.secret_ssm_parameter or secret_arn."
  }
}

################################################################################
# Channels
################################################################################

variable "max_channels_per_connection" {
  description = "Most channels one connection may be a member of (`WS_MAX_CHANNELS_PER_CONNECTION` of the websocket and publisher functions; the publisher's `join` command refuses to go past it too): a `subscribe` beyond it answers the error code `too_many_channels`, and a `?channels=` list longer than it refuses the handshake with 400. Bounds the work of `$disconnect` and of a sender's membership checks."
  type        = number
  default     = 100
  nullable    = false

  validation {
    condition     = var.max_channels_per_connection >= 1 && var.max_channels_per_connection <= 1000000 && floor(var.max_channels_per_connection) == var.max_channels_per_connection
    error_message = "The max_channels_per_connection must be a whole number from 1 to 1000000 (default 100): every connection needs room for at least one channel, and each membership costs $disconnect one more delete, so keep it to what a client really joins."
  }
}

variable "history" {
  description = <<-EOT
    Channel history and recovery (docs/protocol.md, "History and recovery"), opt-in per channel pattern: every publish to a protocol v1 channel, or to a Pusher channel (`pusher`, docs/pusher.md), matching `pattern` (a glob as in Go's `path.Match`; the first matching rule wins) is numbered with the next offset of the channel's stream and kept, and a client that resubscribes with `since` gets what it missed in the reply. `size`: the latest messages kept (1 to 10000, default 100); `ttl`: how long each message is kept, whole hours, minutes and seconds in Go duration syntax (`1h`, `90s`, `2h30m`; at least `1s`, default `1h`). Sets `WS_HISTORY` on the websocket, publisher and Pusher functions. Example: `[{ pattern = "chat-*", size = 100, ttl = "1h" }]`.
  EOT
  type = list(object({
    pattern = string
    size    = optional(number, 100)
    ttl     = optional(string, "1h")
  }))
  default  = []
  nullable = false

  validation {
    condition     = alltrue([for r in var.history : length(r.pattern) >= 1 && length(r.pattern) <= 164])
    error_message = "Each history[].pattern must be a glob of 1 to 164 characters matching channel names, such as \"chat-*\"."
  }

  # Go's path.Match syntax, which the functions check at cold start: every
  # [ opens a class of at least one item closed by ], an item being a
  # character or a range lo-hi ("-" and "]" in a class only escaped, a
  # first "^" negates), and \ escapes the next character.
  # lambda/realtime checks this regex against path.Match.
  validation {
    condition     = alltrue([for r in var.history : can(regex("^([^\\[\\\\]|\\\\.|\\[(\\^(([^\\]\\\\-]|\\\\.)(-([^\\]\\\\-]|\\\\.))?)+|([^\\]\\\\^-]|\\\\.)(-([^\\]\\\\-]|\\\\.))?(([^\\]\\\\-]|\\\\.)(-([^\\]\\\\-]|\\\\.))?)*)\\])*$", r.pattern))])
    error_message = "Each history[].pattern must be a valid glob (Go's path.Match): every [ needs a closing ] with at least one character or range (lo-hi) between, a - or ] inside a class must be escaped with \\, and a trailing \\ escapes nothing."
  }

  validation {
    condition     = alltrue([for r in var.history : r.size >= 1 && r.size <= 10000 && floor(r.size) == r.size])
    error_message = "Each history[].size must be a whole number of messages from 1 to 10000."
  }

  validation {
    condition     = alltrue([for r in var.history : can(regex("^([0-9]+h)?([0-9]+m)?([0-9]+s)?$", r.ttl)) && r.ttl != "" && can(regex("[1-9]", r.ttl))])
    error_message = "Each history[].ttl must be a Go duration of whole hours, minutes and seconds of at least 1s, such as \"1h\", \"90s\" or \"2h30m\"."
  }

  validation {
    condition = alltrue([for r in var.history : try(sum([
      for i, part in regex("^(?:([0-9]+)h)?(?:([0-9]+)m)?(?:([0-9]+)s)?$", r.ttl) : (part == null ? 0 : tonumber(part)) * [3600, 60, 1][i]
    ]) <= 315360000, false)])
    error_message = "Each history[].ttl must be at most 87600h (10 years): longer Go durations overflow, and the functions would refuse them at startup."
  }
}

################################################################################
# DynamoDB
################################################################################

variable "dynamodb" {
  description = <<-EOT
    Settings of the connection/channel table (one table, keys `pk`/`sk`, TTL attribute `ttl`, GSIs `channel-index`, `user-index`, `shard-index`).
    `billing_mode`: `PAY_PER_REQUEST` (default) or `PROVISIONED` (then `read_capacity` and `write_capacity` are required and apply to the table and each GSI).
    `point_in_time_recovery` (default `true`), `kms_key_arn` (customer managed key for server-side encryption; `null` uses the AWS managed key `aws/dynamodb`),
    `deletion_protection` (default `false`).
  EOT
  type = object({
    billing_mode           = optional(string, "PAY_PER_REQUEST")
    read_capacity          = optional(number)
    write_capacity         = optional(number)
    point_in_time_recovery = optional(bool, true)
    kms_key_arn            = optional(string)
    deletion_protection    = optional(bool, false)
  })
  default  = {}
  nullable = false

  validation {
    condition     = contains(["PAY_PER_REQUEST", "PROVISIONED"], var.dynamodb.billing_mode)
    error_message = "The dynamodb.billing_mode must be PAY_PER_REQUEST or PROVISIONED."
  }

  validation {
    condition     = var.dynamodb.billing_mode != "PROVISIONED" || (coalesce(var.dynamodb.read_capacity, 0) >= 1 && coalesce(var.dynamodb.write_capacity, 0) >= 1 && floor(coalesce(var.dynamodb.read_capacity, 0)) == coalesce(var.dynamodb.read_capacity, 0) && floor(coalesce(var.dynamodb.write_capacity, 0)) == coalesce(var.dynamodb.write_capacity, 0))
    error_message = "The dynamodb.billing_mode PROVISIONED needs read_capacity and write_capacity, each a whole number >= 1."
  }

  validation {
    condition     = var.dynamodb.billing_mode == "PROVISIONED" || (var.dynamodb.read_capacity == null && var.dynamodb.write_capacity == null)
    error_message = "The dynamodb.read_capacity and write_capacity apply only to billing_mode PROVISIONED; remove them or set billing_mode = \"PROVISIONED\"."
  }

  validation {
    condition     = var.dynamodb.kms_key_arn == null || can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/[A-Za-z0-9-]+$", coalesce(var.dynamodb.kms_key_arn, "-")))
    error_message = "The dynamodb.kms_key_arn must be a KMS key ARN or null."
  }
}

################################################################################
# Lambda functions
################################################################################

variable "lambda_architecture" {
  description = "Instruction set of the Lambda functions: `arm64` (default, cheaper per GB-second) or `x86_64`."
  type        = string
  default     = "arm64"
  nullable    = false

  validation {
    condition     = contains(["arm64", "x86_64"], var.lambda_architecture)
    error_message = "The lambda_architecture must be arm64 or x86_64."
  }
}

variable "lambda_memory_size" {
  description = "Memory (MB) of each function, from 128 to 10240 (`fanout` is the distributed fan-out worker, deployed only when `distributed_fanout.enabled`; `deployer` redeploys the stage after route changes). Lambda gives CPU in proportion to memory (1,769 MB = 1 vCPU); the sending functions' default (`publisher`, `fanout`: 743 MB) is the CPU one function needs to post at the account's 10,000/s (docs/benchmarks.md, CPU per post)."
  type = object({
    websocket  = optional(number, 256)
    authorizer = optional(number, 128)
    publisher  = optional(number, 743)
    fanout     = optional(number, 743)
    deployer   = optional(number, 128)
  })
  default  = {}
  nullable = false

  validation {
    condition     = alltrue([for v in values(var.lambda_memory_size) : v >= 128 && v <= 10240 && floor(v) == v])
    error_message = "Each lambda_memory_size value must be a whole number from 128 to 10240 MB."
  }
}

variable "lambda_timeout" {
  description = "Timeout (seconds) of each function. API Gateway waits at most 29 s for the websocket and authorizer functions; the publisher fans out to whole channels and may run up to 900 s. The fan-out worker (`fanout`) delivers one queue message (one batch of recipients) per invocation by default; its queue's visibility timeout is six times this value. The `deployer` makes one API Gateway deployment per apply that changes the routes (default 30 s)."
  type = object({
    websocket  = optional(number, 10)
    authorizer = optional(number, 5)
    publisher  = optional(number, 60)
    fanout     = optional(number, 60)
    deployer   = optional(number, 30)
  })
  default  = {}
  nullable = false

  validation {
    condition     = var.lambda_timeout.websocket >= 1 && var.lambda_timeout.websocket <= 29 && var.lambda_timeout.authorizer >= 1 && var.lambda_timeout.authorizer <= 29
    error_message = "The lambda_timeout.websocket and lambda_timeout.authorizer must be from 1 to 29 seconds (API Gateway's integration timeout)."
  }

  validation {
    condition     = var.lambda_timeout.publisher >= 1 && var.lambda_timeout.publisher <= 900
    error_message = "The lambda_timeout.publisher must be from 1 to 900 seconds."
  }

  validation {
    condition     = var.lambda_timeout.fanout >= 1 && var.lambda_timeout.fanout <= 900
    error_message = "The lambda_timeout.fanout must be from 1 to 900 seconds."
  }

  validation {
    condition     = var.lambda_timeout.deployer >= 1 && var.lambda_timeout.deployer <= 900
    error_message = "The lambda_timeout.deployer must be from 1 to 900 seconds."
  }

  validation {
    condition     = alltrue([for v in values(var.lambda_timeout) : floor(v) == v])
    error_message = "Each lambda_timeout value must be a whole number of seconds (Lambda takes no fractions)."
  }
}

variable "tracing_enabled" {
  description = "Whether the functions send X-Ray traces (`tracing_config` mode `Active`; the roles then get `xray:PutTraceSegments` and `xray:PutTelemetryRecords`, which AWS only grants on resource `*`)."
  type        = bool
  default     = false
  nullable    = false
}

variable "send_concurrency" {
  description = "Concurrent `@connections` posts of one function instance, all its fan-outs together (`WS_SEND_CONCURRENCY`), sized for 10,000 posts/s. A sender capped lower (`max_send_rate`, a distributed fan-out worker's `rate_budget / max_concurrency`) keeps its share in flight: `send_concurrency x cap / 10000`, at least 16, or 1.5 x cap x the lowest latency of its posts over the last second when that is more."
  type        = number
  default     = 256
  nullable    = false

  validation {
    condition     = var.send_concurrency >= 1 && var.send_concurrency <= 10000 && floor(var.send_concurrency) == var.send_concurrency
    error_message = "The send_concurrency must be a whole number from 1 to 10000."
  }
}

variable "max_send_rate" {
  description = "Cap on `@connections` requests per second one fan-out may use (`WS_MAX_SEND_RATE`); `0` lets the sender adapt to throttling only. The 10,000 requests/s account limit is shared with every other API Gateway call."
  type        = number
  default     = 0
  nullable    = false

  validation {
    condition     = var.max_send_rate >= 0
    error_message = "The max_send_rate must be >= 0 (0 = adaptive only)."
  }
}

variable "connection_ttl" {
  description = "Lifetime of connection records before DynamoDB TTL may delete them (`WS_CONNECTION_TTL`): whole hours, minutes and seconds in Go duration syntax (`2h10m`, `3h`, `7500s`), at least `2h` because API Gateway keeps a connection open up to 2 hours and the functions refuse a shorter TTL at startup."
  type        = string
  default     = "2h10m"
  nullable    = false

  validation {
    condition     = can(regex("^([0-9]+h)?([0-9]+m)?([0-9]+s)?$", var.connection_ttl)) && var.connection_ttl != ""
    error_message = "The connection_ttl must be a Go duration of whole hours, minutes and seconds such as 2h10m (no spaces, no fractions, no other units)."
  }

  # Seconds = h*3600 + m*60 + s; the functions exit at startup below 2h.
  validation {
    condition = try(sum([
      for i, part in regex("^(?:([0-9]+)h)?(?:([0-9]+)m)?(?:([0-9]+)s)?$", var.connection_ttl) : (part == null ? 0 : tonumber(part)) * [3600, 60, 1][i]
    ]) >= 7200, false)
    error_message = "The connection_ttl must be at least 2h (7200 seconds), such as the default 2h10m: API Gateway keeps a connection open up to 2 hours, so a shorter TTL would delete records of live connections, and the functions refuse it at startup (WS_CONNECTION_TTL)."
  }

  # Go durations end near 2,562,047 hours: past it every function would
  # refuse the value at startup. Ten years is far beyond any use.
  validation {
    condition = try(sum([
      for i, part in regex("^(?:([0-9]+)h)?(?:([0-9]+)m)?(?:([0-9]+)s)?$", var.connection_ttl) : (part == null ? 0 : tonumber(part)) * [3600, 60, 1][i]
    ]) <= 315360000, false)
    error_message = "The connection_ttl must be at most 87600h (10 years)."
  }
}

variable "cleanup_schedule_minutes" {
  description = "Every how many minutes an EventBridge rule invokes the publisher with `{\"action\":\"cleanup\"}` to remove stale connections; `0` disables the schedule."
  type        = number
  default     = 15
  nullable    = false

  validation {
    condition     = var.cleanup_schedule_minutes >= 0 && var.cleanup_schedule_minutes <= 1440 && floor(var.cleanup_schedule_minutes) == var.cleanup_schedule_minutes
    error_message = "The cleanup_schedule_minutes must be a whole number from 0 (disabled) to 1440."
  }
}

################################################################################
# Lambda artifacts
################################################################################

variable "lambda_artifacts" {
  description = <<-EOT
    Prebuilt deployment packages, keyed by function name (`websocket`, `publisher`, `deployer`, `authorizer` when `authorizer.mode` is `jwt`, and `fanout` when `distributed_fanout.enabled`), each a path to a zip that holds only `bootstrap`
    (for example from `make package` or a release's `<function>-<arch>.zip` assets). They override everything else. When empty (the default) the module uses the zips bundled in its `dist/` folder (a `vX.Y.Z-bundled` release tag) when they were built from exactly its sources, and otherwise builds the packages from its own `lambda/` sources with the Go toolchain at apply time.
  EOT
  type        = map(string)
  default     = {}
  nullable    = false

  validation {
    condition     = alltrue([for k in keys(var.lambda_artifacts) : contains(["websocket", "authorizer", "publisher", "fanout", "deployer"], k)])
    error_message = "The lambda_artifacts keys must be websocket, publisher, deployer, authorizer or fanout."
  }

  validation {
    condition     = length(var.lambda_artifacts) == 0 || alltrue([for fn in ["websocket", "publisher", "deployer"] : contains(keys(var.lambda_artifacts), fn)])
    error_message = "The lambda_artifacts must give at least websocket, publisher and deployer (and authorizer with authorizer mode jwt, fanout with distributed_fanout enabled), or be empty to build from source."
  }
}

variable "build_dir" {
  description = "Directory the build writes `<function>.zip` files to when the zips are built from source (`lambda_artifacts` empty and no bundled release matching), relative to the root module. Default: `.terraform/websocket-lambdas/<name>` in the root module. The build reruns when this folder (absolute) changes or a zip is missing from it."
  type        = string
  default     = null
}

variable "go_command" {
  description = "Go binary (name on `PATH` or path) the build runs when `lambda_artifacts` is empty and no bundled zips match the sources; the packager compiles with the same binary (it gets it as `GO`). Plan fails, saying what to do instead, when the build is needed and this binary is missing (a name is looked up on `PATH` at plan on Linux, elsewhere at apply)."
  type        = string
  default     = "go"
  nullable    = false
}

variable "use_bundled_artifacts" {
  description = "Whether to deploy the zips bundled in the module's `dist/` folder (release tags `vX.Y.Z-bundled`) when `dist/manifest.json` was built from exactly the module's sources. `false` builds from source even then (with Go); `lambda_artifacts` overrides both."
  type        = bool
  default     = true
  nullable    = false
}

################################################################################
# Custom domain
################################################################################

variable "custom_domain" {
  description = "Custom domain of the API: `domain_name`, `certificate_arn` (ACM, same region) and optional `api_mapping_key` (path under the domain). The wss URL (`websocket_url`) then uses the domain; the functions keep posting to the stage's execute-api endpoint (`management_endpoint`), which works before the domain's DNS exists. You create the DNS record yourself from the `custom_domain_target` output."
  type = object({
    domain_name     = string
    certificate_arn = string
    api_mapping_key = optional(string)
  })
  default = null

  validation {
    condition     = var.custom_domain == null || can(regex("^arn:aws[a-z-]*:acm:[a-z0-9-]+:[0-9]{12}:certificate/", var.custom_domain.certificate_arn))
    error_message = "The custom_domain.certificate_arn must be an ACM certificate ARN (arn:aws:acm:REGION:ACCOUNT:certificate/ID) in the API's region."
  }

  validation {
    condition     = var.custom_domain == null || can(regex("^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\\.)+([a-z]{2,63}|xn--[a-z0-9-]{1,59})$", try(var.custom_domain.domain_name, "-"))) && length(try(var.custom_domain.domain_name, "")) <= 253
    error_message = "The custom_domain.domain_name must be a lower-case DNS name such as ws.example.com: labels of 1 to 63 characters, at most 253 in all."
  }

  # What API Gateway takes as a mapping key: path segments of letters,
  # digits and $-_.+!*'(), no empty segment (an empty key would make
  # websocket_url end in "/").
  validation {
    condition     = try(var.custom_domain.api_mapping_key, null) == null || can(regex("^[A-Za-z0-9$_.+!*'()-]+(/[A-Za-z0-9$_.+!*'()-]+)*$", var.custom_domain.api_mapping_key)) && length(coalesce(try(var.custom_domain.api_mapping_key, null), "-")) <= 300
    error_message = "The custom_domain.api_mapping_key must be null (the domain's root) or a path of at most 300 characters such as v1 or chat/v1: segments of letters, digits and $-_.+!*'(), without spaces or a leading, trailing or double '/'."
  }
}

################################################################################
# Lifecycle events
################################################################################

variable "event_bus" {
  description = "Lifecycle events (connected, disconnected, message, joined, left) to EventBridge. `null` (default) turns them off. `create = true` creates a bus named `name` (default `<name>-websocket`); otherwise `name` is an existing bus name or ARN. `source` is the events' source field."
  type = object({
    create = optional(bool, false)
    name   = optional(string)
    source = optional(string, "websocket")
  })
  default = null

  validation {
    condition     = var.event_bus == null || try(var.event_bus.create, false) || try(var.event_bus.name, null) != null
    error_message = "The event_bus needs create = true or the name (or ARN) of an existing bus."
  }

  # PutEvents refuses an empty source and one starting with "aws." (AWS's
  # own): every lifecycle event would be lost at run time.
  validation {
    condition     = var.event_bus == null || try(length(var.event_bus.source) >= 1 && length(var.event_bus.source) <= 256 && !startswith(var.event_bus.source, "aws."), false)
    error_message = "The event_bus.source must be 1 to 256 characters and must not start with \"aws.\" (reserved for AWS's own events); default \"websocket\"."
  }

  validation {
    condition     = var.event_bus == null || try(var.event_bus.name, null) == null || can(regex("^(arn:aws[a-z-]*:events:[a-z0-9-]+:[0-9]{12}:event-bus/)?[A-Za-z0-9._/-]{1,256}$", var.event_bus.name))
    error_message = "The event_bus.name must be an event bus name (letters, digits, . _ - /) or an event bus ARN."
  }

  # What CreateEventBus accepts for a custom bus: 1 to 256 letters, digits,
  # '.', '-' or '_'; '/' is reserved for partner event buses (aws.partner/...),
  # "default" is the account's own bus, and a name is not an ARN.
  validation {
    condition = !try(var.event_bus.create, false) || try(var.event_bus.name, null) == null || (
      can(regex("^[A-Za-z0-9._-]{1,256}$", try(var.event_bus.name, ""))) && try(var.event_bus.name, "") != "default"
    )
    error_message = "With event_bus.create = true, event_bus.name is the name of the new bus, which EventBridge's CreateEventBus accepts only as 1 to 256 letters, digits, '.', '-' or '_': no '/' (reserved for partner event buses), not \"default\" (the account's default bus) and not an ARN. Pick another name, leave name unset for <name>-websocket, or set create = false to use an existing bus (name or ARN)."
  }
}

################################################################################
# Distributed fan-out
################################################################################

variable "distributed_fanout" {
  description = <<-EOT
    Distributed fan-out: above `threshold` recipients, the websocket and publisher functions split a send into batches of `batch_size` connection ids,
    put them on an SQS queue, and a fan-out worker Lambda delivers each batch (many workers in parallel), so one send is no longer bound by one function's
    time and network. Off by default. When on, the module creates the queue, its dead-letter queue, the `fanout` worker function (its own role, log group
    and the `lambda_memory_size.fanout` / `lambda_timeout.fanout` settings) and the event source mapping.
    `threshold` (`WS_FANOUT_THRESHOLD`, default 2000; `0` distributes every send), `batch_size` (`WS_FANOUT_BATCH_SIZE`, ids per message, 1 to 1000, default 500),
    `max_concurrency` (most worker invocations at once, 2 to 1000, default 10: about `max_concurrency` x the per-worker send rate is what one distributed send asks of
    API Gateway's account limit), `rate_budget` (`WS_FANOUT_RATE_BUDGET`, `@connections` posts per second all workers together may use, default 10000, API Gateway's
    default account limit; every batch carries `rate_budget / max_concurrency` as its worker's rate cap so the workers share the budget instead of each probing the limit;
    `0` sends no hint and leaves each worker to adapt alone; lower it to leave room for other API Gateway traffic), `messages_per_invocation` (queue messages per worker invocation, 1 to 10; the batches of one invocation are delivered together, so the end of one batch overlaps the others' posting; unset, about half a second of posting at a worker's share: `ceil(rate_budget / max_concurrency / batch_size / 2)` from 1 to 10, with 10000 for a `rate_budget` of 0, which is 1 with the defaults and 5 with `max_concurrency = 2`),
    `max_receive_count` (deliveries before a message moves to the dead-letter queue, 1 to 1000, default 5),
    `message_retention_seconds` (how long an undelivered batch stays on the queue, 60 to 1209600, default 3600: real-time messages go stale; the dead-letter queue keeps 14 days; it must exceed `max_receive_count` x 6 x `lambda_timeout.fanout`, or a failing batch would expire before it reaches the dead-letter queue),
    `kms_key_arn` (customer managed KMS key of both queues; `null` uses SQS managed encryption, SSE-SQS).
  EOT
  type = object({
    enabled                   = optional(bool, false)
    threshold                 = optional(number, 2000)
    batch_size                = optional(number, 500)
    max_concurrency           = optional(number, 10)
    rate_budget               = optional(number, 10000)
    messages_per_invocation   = optional(number)
    max_receive_count         = optional(number, 5)
    message_retention_seconds = optional(number, 3600)
    kms_key_arn               = optional(string)
  })
  default  = {}
  nullable = false

  validation {
    condition     = var.distributed_fanout.threshold >= 0 && floor(var.distributed_fanout.threshold) == var.distributed_fanout.threshold
    error_message = "The distributed_fanout.threshold must be a whole number of recipients >= 0 (0 distributes every send)."
  }

  validation {
    condition     = var.distributed_fanout.batch_size >= 1 && var.distributed_fanout.batch_size <= 1000 && floor(var.distributed_fanout.batch_size) == var.distributed_fanout.batch_size
    error_message = "The distributed_fanout.batch_size must be a whole number from 1 to 1000 (a batch of 1000 ids with a 128 KB message still fits one 256 KB SQS message)."
  }

  validation {
    condition     = var.distributed_fanout.max_concurrency >= 2 && var.distributed_fanout.max_concurrency <= 1000 && floor(var.distributed_fanout.max_concurrency) == var.distributed_fanout.max_concurrency
    error_message = "The distributed_fanout.max_concurrency must be a whole number from 2 to 1000 (the range of an SQS event source mapping's maximum concurrency)."
  }

  validation {
    condition     = var.distributed_fanout.rate_budget >= 0
    error_message = "The distributed_fanout.rate_budget must be >= 0 requests per second (0 = no rate hint in the batches)."
  }

  validation {
    condition     = var.distributed_fanout.messages_per_invocation == null ? true : (var.distributed_fanout.messages_per_invocation >= 1 && var.distributed_fanout.messages_per_invocation <= 10 && floor(var.distributed_fanout.messages_per_invocation) == var.distributed_fanout.messages_per_invocation)
    error_message = "The distributed_fanout.messages_per_invocation must be a whole number from 1 to 10 (each message already holds batch_size recipients), or null for the default."
  }

  validation {
    condition     = var.distributed_fanout.max_receive_count >= 1 && var.distributed_fanout.max_receive_count <= 1000 && floor(var.distributed_fanout.max_receive_count) == var.distributed_fanout.max_receive_count
    error_message = "The distributed_fanout.max_receive_count must be a whole number from 1 to 1000."
  }

  validation {
    condition     = var.distributed_fanout.message_retention_seconds >= 60 && var.distributed_fanout.message_retention_seconds <= 1209600 && floor(var.distributed_fanout.message_retention_seconds) == var.distributed_fanout.message_retention_seconds
    error_message = "The distributed_fanout.message_retention_seconds must be a whole number of seconds from 60 to 1209600 (14 days)."
  }

  validation {
    condition     = var.distributed_fanout.kms_key_arn == null || can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/[A-Za-z0-9-]+$", var.distributed_fanout.kms_key_arn))
    error_message = "The distributed_fanout.kms_key_arn must be a KMS key ARN (arn:aws:kms:REGION:ACCOUNT:key/ID) or null (SQS managed encryption)."
  }
}

################################################################################
# Monitoring
################################################################################

variable "metrics_namespace" {
  description = "CloudWatch namespace of the metrics the functions write in Embedded Metric Format (env `WS_METRICS_NAMESPACE`). Null means `WebSocket/<name>`, one namespace per deployment."
  type        = string
  default     = null

  validation {
    condition     = var.metrics_namespace == null || can(regex("^[A-Za-z0-9._/#-][A-Za-z0-9._/#:-]{0,254}$", var.metrics_namespace)) && !startswith(coalesce(var.metrics_namespace, "-"), "AWS/")
    error_message = "The metrics_namespace must be 1 to 255 characters of letters, digits and . _ / # : -, not starting with a colon or with AWS/ (reserved for AWS services), or null."
  }
}

variable "dashboard_enabled" {
  description = "Create a CloudWatch dashboard named `<name>-<region>` (dashboards are global to the account) with the API Gateway, Lambda, DynamoDB and fan-out queue metrics and the functions' own metrics (docs/operations.md, \"What to watch\")."
  type        = bool
  default     = true
  nullable    = false
}

variable "alarms" {
  description = <<-EOT
    CloudWatch alarms. `enabled = false` turns them all off; each alarm has its own `enabled` and thresholds:
    `dlq_not_empty` (fan-out dead-letter queue holds more than `threshold` messages, by default any; only with distributed fan-out),
    `function_errors` (Lambda `Errors` of each function >= `threshold`),
    `api_execution_errors` (API Gateway `ExecutionError` >= `threshold`; in Pusher mode also on the Pusher WebSocket API, with the same settings),
    `pusher_http_errors` (Pusher mode only: the Pusher HTTP API's `5xx` answers >= `threshold`),
    `dynamodb_throttles` (read + write throttle events of the table and of its indexes together >= `threshold`),
    `throttled_share` (share of posts to connections answered 429 > `threshold_percent`),
    `deliveries_lost` (in-process deliveries that failed after every retry > `threshold`).
    `period` is in seconds (a multiple of 60), `evaluation_periods` how many periods in a row breach before the alarm fires.
  EOT
  type = object({
    enabled = optional(bool, true)
    dlq_not_empty = optional(object({
      enabled            = optional(bool, true)
      threshold          = optional(number, 0)
      period             = optional(number, 300)
      evaluation_periods = optional(number, 1)
    }), {})
    function_errors = optional(object({
      enabled            = optional(bool, true)
      threshold          = optional(number, 1)
      period             = optional(number, 300)
      evaluation_periods = optional(number, 1)
    }), {})
    api_execution_errors = optional(object({
      enabled            = optional(bool, true)
      threshold          = optional(number, 5)
      period             = optional(number, 300)
      evaluation_periods = optional(number, 1)
    }), {})
    pusher_http_errors = optional(object({
      enabled            = optional(bool, true)
      threshold          = optional(number, 5)
      period             = optional(number, 300)
      evaluation_periods = optional(number, 1)
    }), {})
    dynamodb_throttles = optional(object({
      enabled            = optional(bool, true)
      threshold          = optional(number, 1)
      period             = optional(number, 300)
      evaluation_periods = optional(number, 1)
    }), {})
    throttled_share = optional(object({
      enabled            = optional(bool, true)
      threshold_percent  = optional(number, 10)
      period             = optional(number, 60)
      evaluation_periods = optional(number, 5)
    }), {})
    deliveries_lost = optional(object({
      enabled            = optional(bool, true)
      threshold          = optional(number, 0)
      period             = optional(number, 300)
      evaluation_periods = optional(number, 1)
    }), {})
  })
  default  = {}
  nullable = false

  validation {
    condition = alltrue([for a in [var.alarms.dlq_not_empty, var.alarms.function_errors, var.alarms.api_execution_errors, var.alarms.pusher_http_errors, var.alarms.dynamodb_throttles, var.alarms.throttled_share, var.alarms.deliveries_lost] :
    a.period >= 60 && a.period % 60 == 0 && a.evaluation_periods >= 1 && floor(a.evaluation_periods) == a.evaluation_periods])
    error_message = "Each alarm's period must be a multiple of 60 seconds and its evaluation_periods a whole number of at least 1."
  }

  validation {
    condition = alltrue([for a in [var.alarms.dlq_not_empty, var.alarms.function_errors, var.alarms.api_execution_errors, var.alarms.pusher_http_errors, var.alarms.dynamodb_throttles, var.alarms.throttled_share, var.alarms.deliveries_lost] :
    a.period * a.evaluation_periods <= (a.period < 3600 ? 86400 : 604800)])
    error_message = "Each alarm's period x evaluation_periods must be at most one day (86,400 s) for periods under an hour, and at most 7 days (604,800 s) otherwise, as CloudWatch requires."
  }

  validation {
    condition     = alltrue([for a in [var.alarms.function_errors, var.alarms.api_execution_errors, var.alarms.pusher_http_errors, var.alarms.dynamodb_throttles] : a.threshold > 0]) && alltrue([for a in [var.alarms.dlq_not_empty, var.alarms.deliveries_lost] : a.threshold >= 0])
    error_message = "The alarms' thresholds must be above 0 for function_errors, api_execution_errors, pusher_http_errors and dynamodb_throttles (they fire at >= threshold: 0 would fire on every datapoint), and at least 0 for dlq_not_empty and deliveries_lost (they fire above it)."
  }

  validation {
    condition     = var.alarms.throttled_share.threshold_percent >= 0 && var.alarms.throttled_share.threshold_percent <= 100
    error_message = "The alarms.throttled_share.threshold_percent must be a percentage from 0 to 100."
  }
}

variable "alarm_sns_topic_arn" {
  description = "SNS topic ARN the alarms notify on ALARM and OK; null means alarms without actions (visible in the console only)."
  type        = string
  default     = null

  validation {
    condition     = var.alarm_sns_topic_arn == null || can(regex("^arn:aws[a-z-]*:sns:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_-]+(\\.fifo)?$", var.alarm_sns_topic_arn))
    error_message = "The alarm_sns_topic_arn must be an SNS topic ARN (arn:aws:sns:REGION:ACCOUNT:NAME) or null."
  }
}

################################################################################
# Pusher
################################################################################

variable "pusher" {
  description = <<-EOT
    Pusher mode (docs/pusher.md): a second WebSocket API speaking the Pusher Channels protocol 7, the Pusher HTTP API, and a CloudFront host serving both, so Laravel Echo / pusher-js and the Pusher server SDKs work unchanged. Off by default.
    - `enabled`: create it.
    - `app_id`, `key`: the app's id and key (letters, digits, `-`, `_`); clients connect to `/app/{key}`, the SDKs call `/apps/{app_id}/...`.
    - `secret_ssm_parameter` (name or ARN of an SSM SecureString) or `secret_arn` (a Secrets Manager secret): exactly one, the app secret by reference; the function reads it at cold start, so it is never in the module's state or environment. `secret_kms_key_arn`: the customer managed key that encrypts it, if not the AWS managed one.
    - `client_events` (default `true`) and `client_event_rate` (per connection per second, default `10`): Pusher client events (Echo's `whisper`).
    - `presence_max_members` (default `100`): users per presence channel. `activity_timeout` (seconds, `1` to `540`, default `120`): how long a client stays silent before it pings (pusher-js takes the lower of this and its own `activityTimeout`, 120 s unless set: raising it needs both). `max_channels_per_connection` (default `100`).
    - `memory_size` (MB, default `512`) and `timeout` (seconds, `1` to `29`, default `20`) of the Pusher function.
    - `alias` with `acm_certificate_arn` (a certificate in `us-east-1` covering the alias): a host name of yours for the distribution (point a DNS CNAME/alias at `pusher_cloudfront_domain_name`); without them the host is the `*.cloudfront.net` name. A wildcard alias (`*.example.com`) names no one host, so `pusher_host` and `pusher_env` then give the `*.cloudfront.net` name: set `PUSHER_HOST` to your host under the wildcard yourself. `price_class`: `PriceClass_100` (default), `PriceClass_200` or `PriceClass_All`.
  EOT
  type = object({
    enabled                     = optional(bool, false)
    app_id                      = optional(string)
    key                         = optional(string)
    secret_ssm_parameter        = optional(string)
    secret_arn                  = optional(string)
    secret_kms_key_arn          = optional(string)
    client_events               = optional(bool, true)
    client_event_rate           = optional(number, 10)
    presence_max_members        = optional(number, 100)
    activity_timeout            = optional(number, 120)
    max_channels_per_connection = optional(number, 100)
    memory_size                 = optional(number, 512)
    timeout                     = optional(number, 20)
    alias                       = optional(string)
    acm_certificate_arn         = optional(string)
    price_class                 = optional(string, "PriceClass_100")
  })
  default  = {}
  nullable = false

  validation {
    condition     = !var.pusher.enabled || (can(regex("^[A-Za-z0-9_-]{1,64}$", var.pusher.app_id)) && can(regex("^[A-Za-z0-9_-]{1,64}$", var.pusher.key)))
    error_message = "With pusher.enabled, set pusher.app_id and pusher.key to 1 to 64 letters, digits, \"-\" or \"_\" (they appear in the URL paths /apps/{app_id} and /app/{key}), for example app_id = \"my-app\" and key = a random hex string."
  }

  validation {
    condition     = !var.pusher.enabled || length([for v in [var.pusher.secret_ssm_parameter, var.pusher.secret_arn] : v if v != null]) == 1
    error_message = "With pusher.enabled, set exactly one of pusher.secret_ssm_parameter (the name of an SSM SecureString holding the app secret, e.g. \"/myapp/pusher-secret\") or pusher.secret_arn (a Secrets Manager secret ARN). The secret itself is never passed to the module."
  }

  validation {
    condition     = var.pusher.secret_ssm_parameter == null || (!startswith(coalesce(var.pusher.secret_ssm_parameter, "-"), "/aws/reference/") && can(regex("^(arn:aws[a-z-]*:ssm:[a-z0-9-]+:[0-9]{12}:parameter/[a-zA-Z0-9_.-]+(/[a-zA-Z0-9_.-]+)*|[a-zA-Z0-9_.-]+|(/[a-zA-Z0-9_.-]+)+)$", coalesce(var.pusher.secret_ssm_parameter, "-"))))
    error_message = "The pusher.secret_ssm_parameter must be the name (such as /myapp/pusher-secret: letters, digits, '_', '.' or '-', with '/' before each level of a hierarchy) or the ARN (arn:aws:ssm:REGION:ACCOUNT:parameter/NAME) of an SSM parameter, without wildcards or spaces: it is the Resource of the function's ssm:GetParameter; for a Secrets Manager secret use pusher.secret_arn (the function gets secretsmanager:GetSecretValue only then)."
  }

  validation {
    condition     = var.pusher.secret_arn == null || can(regex("^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:[A-Za-z0-9/_+=.@-]+-[A-Za-z0-9]{6}$", coalesce(var.pusher.secret_arn, "-")))
    error_message = "The pusher.secret_arn must be a complete Secrets Manager ARN, with the six characters Secrets Manager adds to the name (arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME-AbCdEf): it is the Resource of the function's secretsmanager:GetSecretValue, which IAM matches against the complete ARN. For an SSM parameter use pusher.secret_ssm_parameter."
  }

  validation {
    condition = alltrue([
      for v in [var.pusher.secret_ssm_parameter, var.pusher.secret_arn, var.pusher.secret_kms_key_arn, var.pusher.alias, var.pusher.acm_certificate_arn] : v == null || trimspace(coalesce(v, " ")) != ""
    ])
    error_message = "A pusher setting (secret_ssm_parameter, secret_arn, secret_kms_key_arn, alias or acm_certificate_arn) is an empty string: leave it unset (null) instead."
  }

  validation {
    condition     = var.pusher.secret_kms_key_arn == null || can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/[A-Za-z0-9-]+$", coalesce(var.pusher.secret_kms_key_arn, "-")))
    error_message = "The pusher.secret_kms_key_arn must be a KMS key ARN (arn:aws:kms:REGION:ACCOUNT:key/ID), or null for the AWS managed key."
  }

  validation {
    condition     = alltrue([for v in [var.pusher.client_event_rate, var.pusher.presence_max_members, var.pusher.max_channels_per_connection] : v >= 1 && v <= 1000000 && floor(v) == v])
    error_message = "The pusher.client_event_rate, pusher.presence_max_members and pusher.max_channels_per_connection must be whole numbers from 1 to 1000000."
  }

  validation {
    condition     = var.pusher.activity_timeout >= 1 && var.pusher.activity_timeout <= 540 && floor(var.pusher.activity_timeout) == var.pusher.activity_timeout
    error_message = "The pusher.activity_timeout must be a whole number of seconds from 1 to 540: clients ping after that much silence and wait 30 s for the pong, which must arrive before API Gateway's 10-minute idle timeout."
  }

  validation {
    condition     = var.pusher.memory_size >= 128 && var.pusher.memory_size <= 10240 && var.pusher.timeout >= 1 && var.pusher.timeout <= 29 && floor(var.pusher.memory_size) == var.pusher.memory_size && floor(var.pusher.timeout) == var.pusher.timeout
    error_message = "The pusher.memory_size must be a whole number from 128 to 10240 MB and pusher.timeout a whole number from 1 to 29 seconds (API Gateway's integration timeout)."
  }

  validation {
    condition     = (var.pusher.alias == null) == (var.pusher.acm_certificate_arn == null)
    error_message = "Set pusher.alias and pusher.acm_certificate_arn together (a custom host name needs a certificate for it), or neither to use the distribution's *.cloudfront.net name."
  }

  validation {
    condition     = var.pusher.alias == null || can(regex("^(\\*\\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\\.)+([a-z]{2,63}|xn--[a-z0-9-]{1,59})$", coalesce(var.pusher.alias, "-"))) && length(coalesce(var.pusher.alias, "-")) <= 253
    error_message = "The pusher.alias must be a lower-case DNS name (labels of 1 to 63 letters, digits or \"-\", at most 253 characters in all), optionally starting with \"*.\": CloudFront refuses any other alternate domain name."
  }

  validation {
    condition     = var.pusher.acm_certificate_arn == null || can(regex("^arn:[a-z-]+:acm:us-east-1:", var.pusher.acm_certificate_arn))
    error_message = "The pusher.acm_certificate_arn must be an ACM certificate in us-east-1 (CloudFront only uses certificates from that region), whatever region the module runs in: request or import it there."
  }

  validation {
    condition     = contains(["PriceClass_100", "PriceClass_200", "PriceClass_All"], var.pusher.price_class)
    error_message = "The pusher.price_class must be PriceClass_100 (North America and Europe), PriceClass_200 (adds most of Asia, Middle East, Africa) or PriceClass_All."
  }
}
