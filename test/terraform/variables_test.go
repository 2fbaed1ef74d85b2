package terraform_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/gruntwork-io/terratest/modules/terraform"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestVariableValidationRejectsBadInputs: each bad input fails plan with the
// actionable message of its validation block (or precondition).
func TestVariableValidationRejectsBadInputs(t *testing.T) {
	t.Parallel()
	dir := copyModule(t)
	base := options(t, "terraform", dir, nil)
	terraform.Init(t, base)

	const arn = "arn:aws:lambda:us-east-1:123456789012:function:mine"
	cases := []struct {
		name string
		vars map[string]interface{}
		want string
	}{
		{"name with space", map[string]interface{}{"name": "my api"}, "The name must be 3 to 40 characters"},
		{"name of two characters (DynamoDB table names need 3)", map[string]interface{}{"name": "ab"}, "The name must be 3 to 40 characters"},
		{"name of 41 characters (<name>-authorizer over 64)", map[string]interface{}{"name": strings.Repeat("n", 41)}, "The name must be 3 to 40 characters"},
		{"unknown authorizer mode", map[string]interface{}{"authorizer": map[string]interface{}{"mode": "oauth"}}, "The authorizer.mode must be one of: none, jwt, lambda."},
		{"lambda mode without function", map[string]interface{}{"authorizer": map[string]interface{}{"mode": "lambda"}}, `needs authorizer.function_arn`},
		{"function_arn without lambda mode", map[string]interface{}{"authorizer": map[string]interface{}{"mode": "none", "function_arn": arn}}, `only used with mode "lambda"`},
		{"jwt with two key sources", map[string]interface{}{"authorizer": map[string]interface{}{"mode": "jwt", "jwt": map[string]interface{}{"secret_ssm_parameter": "/a", "public_key": fakePublicKey}}}, "must come from exactly one source"},
		{"jwt without key source", map[string]interface{}{"authorizer": map[string]interface{}{"mode": "jwt"}}, "needs exactly one key source"},
		{"jwt key with mode none", map[string]interface{}{"authorizer": map[string]interface{}{"jwt": map[string]interface{}{"secret_ssm_parameter": "/a"}}}, `The JWT settings authorizer.jwt.secret_ssm_parameter are only read in authorizer mode "jwt", and the mode is "none"`},
		{"jwt issuer with mode lambda", map[string]interface{}{"authorizer": map[string]interface{}{"mode": "lambda", "function_arn": arn, "jwt": map[string]interface{}{"issuer": "https://issuer", "user_claim": "email"}}}, `The JWT settings authorizer.jwt.issuer, authorizer.jwt.user_claim are only read in authorizer mode "jwt", and the mode is "lambda"`},
		{"inline jwt secret with mode none", map[string]interface{}{"authorizer_jwt_secret": strings.Repeat("s", 32)}, `The JWT settings authorizer_jwt_secret are only read in authorizer mode "jwt"`},
		{"jwt secret not a secret ARN", map[string]interface{}{"authorizer": map[string]interface{}{"mode": "jwt", "jwt": map[string]interface{}{"secret_arn": "my-secret"}}}, "must be complete Secrets Manager secret ARNs"},
		// IAM matches GetSecretValue against the complete ARN: a partial one
		// (no -AbCdEf) as the policy's Resource would deny the read.
		{"jwt secret ARN without its suffix", map[string]interface{}{"authorizer": map[string]interface{}{"mode": "jwt", "jwt": map[string]interface{}{"secret_arn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:ws-jwt"}}}, "with the six characters Secrets Manager adds to the name"},
		{"jwt public key secret ARN without its suffix", map[string]interface{}{"authorizer": map[string]interface{}{"mode": "jwt", "jwt": map[string]interface{}{"public_key_secret_arn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:jwks"}}}, "must be complete Secrets Manager secret ARNs"},
		// Each becomes an IAM Resource: a wildcard would grant every parameter,
		// secret or key it matches.
		{"jwt secret parameter ARN with a wildcard", jwtAuthorizer(map[string]interface{}{"secret_ssm_parameter": "arn:aws:ssm:us-east-1:123456789012:parameter/*"}), "must be SSM parameter names (such as /myapp/jwt-secret"},
		{"jwt public key parameter with a wildcard", jwtAuthorizer(map[string]interface{}{"public_key_ssm_parameter": "/ws/*"}), "without wildcards or spaces: each is the Resource of the authorizer's ssm:GetParameter"},
		{"jwt secret parameter with spaces around it", jwtAuthorizer(map[string]interface{}{"secret_ssm_parameter": " /ws/jwt "}), "must be SSM parameter names"},
		{"jwt secret parameter of a hierarchy without its leading slash", jwtAuthorizer(map[string]interface{}{"secret_ssm_parameter": "ws/jwt"}), "must be SSM parameter names"},
		{"jwt secret ARN with a wildcard", jwtAuthorizer(map[string]interface{}{"secret_arn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:*-AbCdEf"}), "must be complete Secrets Manager secret ARNs"},
		{"jwt kms key ARN with a wildcard", jwtAuthorizer(map[string]interface{}{"secret_ssm_parameter": "/a", "kms_key_arn": "arn:aws:kms:us-east-1:123456789012:key/*"}), "authorizer.jwt.kms_key_arn must be a KMS key ARN"},
		// Regional services: the authorizer's clients cannot reach another region's.
		{"jwt secret in another region", jwtAuthorizer(map[string]interface{}{"secret_arn": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:ws-jwt-AbCdEf"}), "An authorizer.jwt parameter, secret or KMS key ARN names another region than the module's (us-east-1)"},
		{"jwt key parameter in another region", jwtAuthorizer(map[string]interface{}{"public_key_ssm_parameter": "arn:aws:ssm:eu-west-1:123456789012:parameter/ws/jwks"}), "names another region than the module's"},
		{"jwt kms key in another region", jwtAuthorizer(map[string]interface{}{"secret_ssm_parameter": "/ws/jwt", "kms_key_arn": "arn:aws:kms:eu-west-1:123456789012:key/0b7e3a52-1111-2222-3333-444455556666"}), "names another region than the module's"},
		{"jwt key source an empty string", map[string]interface{}{"authorizer": map[string]interface{}{"mode": "jwt", "jwt": map[string]interface{}{"secret_ssm_parameter": ""}}}, "An authorizer.jwt setting is an empty string: leave it unset (null) instead"},
		{"jwt user claim an empty string", jwtAuthorizer(map[string]interface{}{"secret_ssm_parameter": "/a", "user_claim": ""}), "an empty user_claim or channels_claim would quietly read sub or channels"},
		{"inline public key neither PEM nor JWKS", jwtAuthorizer(map[string]interface{}{"public_key": "not a key"}), "The authorizer.jwt.public_key must be a PEM public key"},
		{"jwt issuer an empty string", map[string]interface{}{"authorizer": map[string]interface{}{"mode": "jwt", "jwt": map[string]interface{}{"secret_ssm_parameter": "/a", "issuer": " "}}}, "An authorizer.jwt setting is an empty string"},
		{"bad identity source", map[string]interface{}{"authorizer": map[string]interface{}{"identity_sources": []string{"token"}}}, "identity_sources must be a non-empty list"},
		{"route over $connect", map[string]interface{}{"routes": map[string]interface{}{"$connect": map[string]interface{}{}}}, "The routes keys must not start with '$': $connect, $disconnect and $default are the module's routes"},
		// API Gateway refuses any other $-prefixed key at apply.
		{"burst limit past 32 bits", map[string]interface{}{"throttling_burst_limit": 4294967297}, "The throttling_burst_limit must be a whole number from 1 to 2147483647"},
		{"route key with API Gateway's $ prefix", map[string]interface{}{"routes": map[string]interface{}{"$custom": map[string]interface{}{}}}, "API Gateway reserves the '$' prefix"},
		// In the Lambda permission's source ARN (.../live/<route key>) these
		// are wildcards: "*" would let the stage invoke it for every route.
		{"route key *", map[string]interface{}{"routes": map[string]interface{}{"*": map[string]interface{}{"handler": "lambda", "function_arn": arn}}}, "without whitespace, '*' or '?'"},
		{"route key with ?", map[string]interface{}{"routes": map[string]interface{}{"chat?": map[string]interface{}{}}}, "without whitespace, '*' or '?'"},
		{"route handler unknown", map[string]interface{}{"routes": map[string]interface{}{"x": map[string]interface{}{"handler": "http"}}}, "handler must be websocket"},
		{"lambda route without arn", map[string]interface{}{"routes": map[string]interface{}{"x": map[string]interface{}{"handler": "lambda"}}}, `handler = "lambda" needs function_arn`},
		{"provisioned without capacity", map[string]interface{}{"dynamodb": map[string]interface{}{"billing_mode": "PROVISIONED"}}, "PROVISIONED needs read_capacity and write_capacity"},
		{"capacity on demand", map[string]interface{}{"dynamodb": map[string]interface{}{"read_capacity": 5}}, "apply only to billing_mode PROVISIONED"},
		{"fractional capacity", map[string]interface{}{"dynamodb": map[string]interface{}{"billing_mode": "PROVISIONED", "read_capacity": 1.5, "write_capacity": 1}}, "each a whole number >= 1"},
		{"fractional memory", map[string]interface{}{"lambda_memory_size": map[string]interface{}{"websocket": 128.5}}, "must be a whole number from 128 to 10240 MB"},
		{"fractional timeout", map[string]interface{}{"lambda_timeout": map[string]interface{}{"publisher": 1.5}}, "must be a whole number of seconds"},
		{"jwt kms key not an ARN", jwtAuthorizer(map[string]interface{}{"secret_ssm_parameter": "/a", "kms_key_arn": "notanarn"}), "authorizer.jwt.kms_key_arn must be a KMS key ARN"},
		{"empty api mapping key", map[string]interface{}{"custom_domain": map[string]interface{}{"domain_name": "ws.example.com", "certificate_arn": "arn:aws:acm:us-east-1:123456789012:certificate/abc", "api_mapping_key": ""}}, "custom_domain.api_mapping_key must be null"},
		{"api mapping key with a space", map[string]interface{}{"custom_domain": map[string]interface{}{"domain_name": "ws.example.com", "certificate_arn": "arn:aws:acm:us-east-1:123456789012:certificate/abc", "api_mapping_key": "a/b c"}}, "custom_domain.api_mapping_key must be null"},
		{"empty event source", map[string]interface{}{"event_bus": map[string]interface{}{"create": true, "source": ""}}, "event_bus.source must be 1 to 256 characters"},
		{"AWS event source", map[string]interface{}{"event_bus": map[string]interface{}{"create": true, "source": "aws.websocket"}}, "event_bus.source must be 1 to 256 characters"},
		{"bad billing mode", map[string]interface{}{"dynamodb": map[string]interface{}{"billing_mode": "ON_DEMAND"}}, "must be PAY_PER_REQUEST or PROVISIONED"},
		{"bad architecture", map[string]interface{}{"lambda_architecture": "amd64"}, "must be arm64 or x86_64"},
		{"bad retention", map[string]interface{}{"log_retention_in_days": 10}, "must be a value CloudWatch Logs accepts"},
		{"bad log level", map[string]interface{}{"log_level": "trace"}, "must be one of: debug, info, warn, error"},
		{"history size zero", map[string]interface{}{"history": []interface{}{map[string]interface{}{"pattern": "chat-*", "size": 0}}}, "history[].size must be a whole number"},
		{"history ttl in days", map[string]interface{}{"history": []interface{}{map[string]interface{}{"pattern": "chat-*", "ttl": "1d"}}}, "history[].ttl must be a Go duration"},
		{"history ttl zero", map[string]interface{}{"history": []interface{}{map[string]interface{}{"pattern": "chat-*", "ttl": "0s"}}}, "history[].ttl must be a Go duration"},
		{"route named after a protocol action", map[string]interface{}{"routes": map[string]interface{}{"subscribe": map[string]interface{}{}}}, "must not be a protocol v1 action"},
		{"history pattern with an unclosed class", map[string]interface{}{"history": []interface{}{map[string]interface{}{"pattern": "chat-["}}}, "history[].pattern must be a valid glob"},
		{"history pattern with an empty class", map[string]interface{}{"history": []interface{}{map[string]interface{}{"pattern": "chat-[]x"}}}, "history[].pattern must be a valid glob"},
		{"history pattern with an unescaped - closing a class", map[string]interface{}{"history": []interface{}{map[string]interface{}{"pattern": "chat-[a-]"}}}, "history[].pattern must be a valid glob"},
		{"history empty pattern", map[string]interface{}{"history": []interface{}{map[string]interface{}{"pattern": ""}}}, "history[].pattern must be a glob"},
		{"websocket timeout over 29s", map[string]interface{}{"lambda_timeout": map[string]interface{}{"websocket": 60}}, "API Gateway's integration timeout"},
		{"artifacts without publisher", map[string]interface{}{"lambda_artifacts": map[string]interface{}{"websocket": "w.zip"}}, "must give at least websocket, publisher and deployer"},
		{"artifacts without deployer", map[string]interface{}{"lambda_artifacts": map[string]interface{}{"websocket": "w.zip", "publisher": "p.zip"}}, "must give at least websocket, publisher and deployer"},
		{"artifacts with unknown function", map[string]interface{}{"lambda_artifacts": map[string]interface{}{"chat": "c.zip"}}, "keys must be websocket, publisher, deployer, authorizer or fanout"},
		{"fanout negative threshold", fanout(map[string]interface{}{"threshold": -1}), "threshold must be a whole number of recipients >= 0"},
		{"fanout batch above SQS size", fanout(map[string]interface{}{"batch_size": 1001}), "batch_size must be a whole number from 1 to 1000"},
		{"fanout empty batch", fanout(map[string]interface{}{"batch_size": 0}), "batch_size must be a whole number from 1 to 1000"},
		{"fanout concurrency below mapping minimum", fanout(map[string]interface{}{"max_concurrency": 1}), "max_concurrency must be a whole number from 2 to 1000"},
		{"fanout eleven messages per invocation", fanout(map[string]interface{}{"messages_per_invocation": 11}), "messages_per_invocation must be a whole number from 1 to 10"},
		{"fanout zero receives", fanout(map[string]interface{}{"max_receive_count": 0}), "max_receive_count must be a whole number from 1 to 1000"},
		{"fanout negative rate budget", fanout(map[string]interface{}{"rate_budget": -1}), "rate_budget must be >= 0"},
		{"fanout retention under a minute", fanout(map[string]interface{}{"message_retention_seconds": 30}), "message_retention_seconds must be a whole number of seconds from 60 to 1209600"},
		{"fanout retention shorter than the receives", fanout(map[string]interface{}{"max_receive_count": 10}), "message_retention_seconds must exceed max_receive_count x the queue's visibility timeout"},
		{"fanout key alias", fanout(map[string]interface{}{"kms_key_arn": "alias/aws/sqs"}), "distributed_fanout.kms_key_arn must be a KMS key ARN"},
		{"fanout timeout over 900s", map[string]interface{}{"lambda_timeout": map[string]interface{}{"fanout": 901}}, "lambda_timeout.fanout must be from 1 to 900 seconds"},
		{"deployer timeout over 900s", map[string]interface{}{"lambda_timeout": map[string]interface{}{"deployer": 901}}, "lambda_timeout.deployer must be from 1 to 900 seconds"},
		{"event bus without name or create", map[string]interface{}{"event_bus": map[string]interface{}{}}, "needs create = true or the name"},
		{"custom domain bad certificate", map[string]interface{}{"custom_domain": map[string]interface{}{"domain_name": "ws.example.com", "certificate_arn": "cert"}}, "must be an ACM certificate ARN"},
		{"connection ttl not a duration", map[string]interface{}{"connection_ttl": "2 hours"}, "must be a Go duration"},
		{"connection ttl of 30 minutes", map[string]interface{}{"connection_ttl": "30m"}, "The connection_ttl must be at least 2h (7200 seconds)"},
		{"connection ttl of 1h59m59s", map[string]interface{}{"connection_ttl": "1h59m59s"}, "The connection_ttl must be at least 2h (7200 seconds)"},
		{"connection ttl of 7199 seconds", map[string]interface{}{"connection_ttl": "7199s"}, "The connection_ttl must be at least 2h (7200 seconds)"},
		{"connection ttl of 119 minutes", map[string]interface{}{"connection_ttl": "119m"}, "The connection_ttl must be at least 2h (7200 seconds)"},
		{"connection ttl of 0h", map[string]interface{}{"connection_ttl": "0h"}, "The connection_ttl must be at least 2h (7200 seconds)"},
		{"connection ttl with a fraction", map[string]interface{}{"connection_ttl": "2.5h"}, "must be a Go duration of whole hours, minutes and seconds"},
		{"connection ttl empty", map[string]interface{}{"connection_ttl": ""}, "must be a Go duration of whole hours, minutes and seconds"},
		{"built-in custom route without events", map[string]interface{}{"routes": map[string]interface{}{"typing": map[string]interface{}{}}}, `The custom route "typing" has handler = "websocket" (the default), but lifecycle events are off`},
		{"explicit websocket route without events", map[string]interface{}{"routes": map[string]interface{}{"typing": map[string]interface{}{"handler": "websocket"}}}, "Set event_bus (for example { create = true }), or send the route to your own function"},
		{"cleanup every half minute", map[string]interface{}{"cleanup_schedule_minutes": 0.5}, "whole number from 0 (disabled) to 1440"},
		// Throttling of 0 lets nothing through (every $connect answers 429).
		{"throttling burst 0", map[string]interface{}{"throttling_burst_limit": 0}, "The throttling_burst_limit must be a whole number from 1 to 2147483647"},
		{"throttling rate 0", map[string]interface{}{"throttling_rate_limit": 0}, "The throttling_rate_limit must be >= 1 request per second: 0 lets no request through"},
		{"throttling rate 0.5", map[string]interface{}{"throttling_rate_limit": 0.5}, "The throttling_rate_limit must be >= 1 request per second"},
		// Names CreateEventBus refuses for a new bus.
		{"new event bus with a slash", map[string]interface{}{"event_bus": map[string]interface{}{"create": true, "name": "aws.partner/mine"}}, "With event_bus.create = true, event_bus.name is the name of the new bus"},
		{"new event bus named default", map[string]interface{}{"event_bus": map[string]interface{}{"create": true, "name": "default"}}, `not "default" (the account's default bus)`},
		{"new event bus named by ARN", map[string]interface{}{"event_bus": map[string]interface{}{"create": true, "name": existingEventBusARN}}, "no '/' (reserved for partner event buses), not \"default\" (the account's default bus) and not an ARN"},
		{"new event bus name of 257 characters", map[string]interface{}{"event_bus": map[string]interface{}{"create": true, "name": strings.Repeat("b", 257)}}, "accepts only as 1 to 256 letters, digits"},
		// Identity sources API Gateway refuses.
		{"identity source from a stage variable", map[string]interface{}{"authorizer": map[string]interface{}{"mode": "lambda", "function_arn": arn, "identity_sources": []string{"route.request.header.Authorization", "stageVariables.token"}}}, "cannot name a stage variable (stageVariables.NAME): this module's stage defines none"},
		{"jwt token from the context", map[string]interface{}{"authorizer": map[string]interface{}{"mode": "jwt", "jwt": map[string]interface{}{"secret_ssm_parameter": "/a"}, "identity_sources": []string{"context.identity.sourceIp", "route.request.querystring.token"}}}, `With authorizer.mode = "jwt", the first of authorizer.identity_sources is where the built-in authorizer reads the token`},
		{"identity source from the context with a colon", map[string]interface{}{"authorizer": map[string]interface{}{"identity_sources": []string{"context.a:b"}}}, "must be a non-empty list of route.request.querystring.NAME, route.request.header.NAME or context.NAME"},
		{"identity source with a space", map[string]interface{}{"authorizer": map[string]interface{}{"identity_sources": []string{"route.request.header.X Token"}}}, "must be a non-empty list of route.request.querystring.NAME, route.request.header.NAME or context.NAME"},
		{"identity source from a cookie", map[string]interface{}{"authorizer": map[string]interface{}{"identity_sources": []string{"route.request.cookie.token"}}}, "must be a non-empty list of route.request.querystring.NAME, route.request.header.NAME or context.NAME"},
		{"identity source with a colon", map[string]interface{}{"authorizer": map[string]interface{}{"identity_sources": []string{"route.request.querystring.a:b"}}}, "must be a non-empty list of route.request.querystring.NAME, route.request.header.NAME or context.NAME"},
		{"no identity source", map[string]interface{}{"authorizer": map[string]interface{}{"identity_sources": []string{}}}, "must be a non-empty list of route.request.querystring.NAME, route.request.header.NAME or context.NAME"},
		// An inline key lives in the 4 KB environment.
		{"inline public key over 3 KB", jwtAuthorizer(map[string]interface{}{"public_key": "-----BEGIN " + strings.Repeat("k", 3073-len("-----BEGIN "))}), "this key is longer than the 3072 characters the module allows there. Store the PEM or JWKS in an SSM SecureString parameter"},
		{"environment over 4 KB", jwtAuthorizer(map[string]interface{}{"public_key": "-----BEGIN " + strings.Repeat("k", 3000-len("-----BEGIN ")), "issuer": "https://" + strings.Repeat("i", 1100)}), "The environment of the authorizer function is larger than Lambda's 4 KB (4096 bytes) limit"},
		{"inline secret under 32 bytes", map[string]interface{}{"authorizer": map[string]interface{}{"mode": "jwt"}, "authorizer_jwt_secret": "short"}, "The authorizer_jwt_secret must be at least 32 bytes"},
		{"environment over 4 KB with an inline secret", map[string]interface{}{"authorizer": map[string]interface{}{"mode": "jwt"}, "authorizer_jwt_secret": strings.Repeat("s", 4100)}, "store it in an SSM SecureString parameter"},
		// JWKS URL, leeway, token_use.
		{"jwks url over http", jwtAuthorizer(map[string]interface{}{"jwks_url": "http://issuer.example/.well-known/jwks.json"}), "The authorizer.jwt.jwks_url must be an https:// URL"},
		{"jwks url with credentials", jwtAuthorizer(map[string]interface{}{"jwks_url": "https://user:pw@issuer.example/jwks.json"}), "The authorizer.jwt.jwks_url must be an https:// URL without credentials"},
		{"jwks url and a public key", jwtAuthorizer(map[string]interface{}{"jwks_url": "https://issuer.example/jwks.json", "public_key": fakePublicKey}), "set only one of secret_ssm_parameter, secret_arn, public_key, public_key_ssm_parameter, public_key_secret_arn, jwks_url"},
		{"negative leeway", jwtAuthorizer(map[string]interface{}{"jwks_url": "https://issuer.example/jwks.json", "leeway_seconds": -1}), "The authorizer.jwt.leeway_seconds must be a whole number of seconds from 0 to 300"},
		{"leeway over 5 minutes", jwtAuthorizer(map[string]interface{}{"jwks_url": "https://issuer.example/jwks.json", "leeway_seconds": 301}), "The authorizer.jwt.leeway_seconds must be a whole number of seconds from 0 to 300"},
		{"fractional leeway", jwtAuthorizer(map[string]interface{}{"jwks_url": "https://issuer.example/jwks.json", "leeway_seconds": 1.5}), "The authorizer.jwt.leeway_seconds must be a whole number of seconds from 0 to 300"},
		{"token_use refresh", jwtAuthorizer(map[string]interface{}{"jwks_url": "https://issuer.example/jwks.json", "token_use": "refresh"}), `The authorizer.jwt.token_use must be "id" (Amazon Cognito ID tokens) or "access"`},
		{"jwks url without issuer", jwtAuthorizer(map[string]interface{}{"jwks_url": "https://issuer.example/jwks.json", "audience": "app"}), "The authorizer.jwt.jwks_url needs issuer, and audience or token_use"},
		{"jwks url without audience or token_use", jwtAuthorizer(map[string]interface{}{"jwks_url": "https://issuer.example/jwks.json", "issuer": "https://issuer.example"}), "The authorizer.jwt.jwks_url needs issuer, and audience or token_use"},
		// ARNs that become IAM resources or KMS key ids must be whole.
		{"log group key ARN cut short", map[string]interface{}{"cloudwatch_logs_kms_key_arn": "arn:aws:kms:"}, "The cloudwatch_logs_kms_key_arn must be a KMS key ARN"},
		{"table key given as an alias ARN", map[string]interface{}{"dynamodb": map[string]interface{}{"kms_key_arn": "arn:aws:kms:us-east-1:123456789012:alias/mykey"}}, "dynamodb.kms_key_arn"},
		{"pusher secret ARN cut short", map[string]interface{}{"pusher": map[string]interface{}{"enabled": true, "app_id": "app", "key": "key1", "secret_arn": "arn:x:secretsmanager:"}}, "The pusher.secret_arn must be a complete Secrets Manager ARN"},
		{"pusher secret ARN without its suffix", map[string]interface{}{"pusher": map[string]interface{}{"enabled": true, "app_id": "app", "key": "key1", "secret_arn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:pusher"}}, "with the six characters Secrets Manager adds to the name"},
		// "" is not unset: it passed as "no parameter" in the one-source
		// check and as a parameter in the policy (parameter/ with no name).
		{"pusher secret parameter an empty string", map[string]interface{}{"pusher": map[string]interface{}{"enabled": true, "app_id": "app", "key": "key1", "secret_ssm_parameter": "", "secret_arn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:pusher-AbCdEf"}}, "set exactly one of pusher.secret_ssm_parameter"},
		{"pusher key ARN an empty string", map[string]interface{}{"pusher": map[string]interface{}{"enabled": true, "app_id": "app", "key": "key1", "secret_ssm_parameter": "/x/y", "secret_kms_key_arn": ""}}, "A pusher setting (secret_ssm_parameter, secret_arn, secret_kms_key_arn, alias or acm_certificate_arn) is an empty string"},
		{"pusher secret key ARN cut short", map[string]interface{}{"pusher": map[string]interface{}{"enabled": true, "app_id": "app", "key": "key1", "secret_ssm_parameter": "/x/y", "secret_kms_key_arn": "arn:x:kms:"}}, "The pusher.secret_kms_key_arn must be a KMS key ARN"},
		{"pusher secret given as a Secrets Manager reference", map[string]interface{}{"pusher": map[string]interface{}{"enabled": true, "app_id": "app", "key": "key1", "secret_ssm_parameter": "/aws/reference/secretsmanager/pusher"}}, "for a Secrets Manager secret use pusher.secret_arn"},
		{"pusher secret parameter in another region", map[string]interface{}{"pusher": map[string]interface{}{"enabled": true, "app_id": "app", "key": "key1", "secret_ssm_parameter": "arn:aws:ssm:eu-west-1:123456789012:parameter/pusher"}}, "ARN names another region than the module's"},
		{"fractional pusher memory", map[string]interface{}{"pusher": map[string]interface{}{"enabled": true, "app_id": "app", "key": "key1", "secret_ssm_parameter": "/x/y", "memory_size": 512.5}}, "The pusher.memory_size must be a whole number"},
		{"fractional pusher timeout", map[string]interface{}{"pusher": map[string]interface{}{"enabled": true, "app_id": "app", "key": "key1", "secret_ssm_parameter": "/x/y", "timeout": 20.5}}, "pusher.timeout a whole number"},
		{"pusher alias not a host", map[string]interface{}{"pusher": map[string]interface{}{"enabled": true, "app_id": "app", "key": "key1", "secret_ssm_parameter": "/x/y", "alias": "not a host!", "acm_certificate_arn": "arn:aws:acm:us-east-1:123456789012:certificate/abc"}}, "The pusher.alias must be a lower-case DNS name"},
		// Names and tags AWS refuses.
		{"domain label over 63 characters", map[string]interface{}{"custom_domain": map[string]interface{}{"domain_name": strings.Repeat("a", 64) + ".example.com", "certificate_arn": "arn:aws:acm:us-east-1:123456789012:certificate/abc"}}, "labels of 1 to 63 characters"},
		{"certificate in another region", map[string]interface{}{"custom_domain": map[string]interface{}{"domain_name": "ws.example.com", "certificate_arn": "arn:aws:acm:eu-west-1:123456789012:certificate/abc"}}, "a REGIONAL domain name needs an ACM certificate in the API's own region"},
		{"api mapping key over 300 characters", map[string]interface{}{"custom_domain": map[string]interface{}{"domain_name": "ws.example.com", "certificate_arn": "arn:aws:acm:us-east-1:123456789012:certificate/abc", "api_mapping_key": strings.Repeat("k", 301)}}, "a path of at most 300 characters"},
		{"tag key in the aws: namespace", map[string]interface{}{"tags": map[string]interface{}{"aws:owner": "me"}}, "not starting with aws:"},
		{"tag value over 256 characters", map[string]interface{}{"tags": map[string]interface{}{"team": strings.Repeat("v", 257)}}, "values of at most 256 characters"},
		{"51 tags", map[string]interface{}{"tags": manyTags(51)}, "The tags may be at most 50"},
		// Durations past what Go can hold.
		{"connection ttl of 3,000,000 hours", map[string]interface{}{"connection_ttl": "3000000h"}, "The connection_ttl must be at most 87600h"},
		{"history ttl of 3,000,000 hours", map[string]interface{}{"history": []interface{}{map[string]interface{}{"pattern": "chat-*", "size": 10, "ttl": "3000000h"}}}, "Each history[].ttl must be at most 87600h"},
		// Channels per connection.
		{"no channel per connection", map[string]interface{}{"max_channels_per_connection": 0}, "The max_channels_per_connection must be a whole number from 1 to 1000000"},
		{"fractional channels per connection", map[string]interface{}{"max_channels_per_connection": 2.5}, "The max_channels_per_connection must be a whole number from 1 to 1000000"},
		// Rendered as 100000000000000000000 in the environment, which no Go int holds.
		{"channels per connection of 1e20", map[string]interface{}{"max_channels_per_connection": 1e20}, "The max_channels_per_connection must be a whole number from 1 to 1000000"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			vars := map[string]interface{}{"name": "wst-validation"}
			for k, v := range tc.vars {
				vars[k] = v
			}
			opts := options(t, "terraform", dir, vars)
			assert.Contains(t, planRefusal(t, opts, tc.vars), tc.want)
		})
	}

	t.Run("artifact path that does not exist", func(t *testing.T) {
		opts := options(t, "terraform", dir, map[string]interface{}{
			"name":             "wst-validation",
			"lambda_artifacts": map[string]interface{}{"websocket": "/nonexistent/websocket.zip", "publisher": "/nonexistent/publisher.zip", "deployer": "/nonexistent/deployer.zip"},
		})
		assert.Contains(t, planRefusal(t, opts, nil), "cannot be read; build it first")
	})

	t.Run("jwt with prebuilt artifacts but no authorizer zip", func(t *testing.T) {
		opts := options(t, "terraform", dir, map[string]interface{}{
			"name":             "wst-validation",
			"authorizer":       map[string]interface{}{"mode": "jwt", "jwt": map[string]interface{}{"public_key": fakePublicKey}},
			"lambda_artifacts": writeFakeZips(t, "websocket", "publisher"),
		})
		assert.Contains(t, planRefusal(t, opts, nil), `The lambda_artifacts map has no "authorizer" zip`)
	})

	t.Run("fanout on with prebuilt artifacts but no fanout zip", func(t *testing.T) {
		opts := options(t, "terraform", dir, map[string]interface{}{
			"name":               "wst-validation",
			"distributed_fanout": map[string]interface{}{"enabled": true},
			"lambda_artifacts":   writeFakeZips(t, "websocket", "publisher"),
		})
		assert.Contains(t, planRefusal(t, opts, nil), `The lambda_artifacts map has no "fanout" zip`)
	})
}

// fanout returns vars that turn distributed fan-out on with extra settings.
func fanout(settings map[string]interface{}) map[string]interface{} {
	v := map[string]interface{}{"enabled": true}
	for k, s := range settings {
		v[k] = s
	}
	return map[string]interface{}{"distributed_fanout": v}
}

// jwtAuthorizer returns vars for authorizer mode jwt with the given jwt settings.
func jwtAuthorizer(settings map[string]interface{}) map[string]interface{} {
	return map[string]interface{}{"authorizer": map[string]interface{}{"mode": "jwt", "jwt": settings}}
}

// fakePublicKey passes the module's check of an inline key (PEM or JWKS
// JSON); the authorizer would parse it at cold start. One line: Terratest
// passes it inside an HCL -var value.
const fakePublicKey = "-----BEGIN PUBLIC KEY----- not parsed at plan -----END PUBLIC KEY-----"

// planRefusal plans opts, requires the plan to fail, and returns Terraform's
// diagnostics on one line. Only stderr: the plan Terraform renders on stdout
// at the same time can cut into them in a combined output.
func planRefusal(t *testing.T, opts *terraform.Options, input interface{}) string {
	t.Helper()
	_, stderr, code, err := terraform.RunTerraformCommandAndGetStdOutErrCodeE(t, opts, terraform.FormatArgs(opts, "plan", "-input=false", "-lock=false")...)
	require.Errorf(t, err, "plan must reject %v", input)
	require.NotZero(t, code)
	return oneLine(stderr)
}

// oneLine joins Terraform's wrapped diagnostics into single spaces.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// TestConnectionTTLAcceptsTwoHoursAndMore: durations of at least 2h, written
// with any of the hour, minute and second parts, plan and reach the
// functions' WS_CONNECTION_TTL unchanged (the lower bound is inclusive).
func TestConnectionTTLAcceptsTwoHoursAndMore(t *testing.T) {
	t.Parallel()
	dir := copyModule(t)
	terraform.Init(t, options(t, "terraform", dir, nil))
	for _, ttl := range []string{"2h", "120m", "7200s", "1h60m", "1h59m60s", "2h10m", "24h"} {
		t.Run(ttl, func(t *testing.T) {
			opts := withPlanFile(t, options(t, "terraform", dir, map[string]interface{}{"name": "wst-ttl", "connection_ttl": ttl}))
			plan := planShow(t, opts)
			assert.Equal(t, ttl, environment(t, plan, `aws_lambda_function.this["websocket"]`)["WS_CONNECTION_TTL"])
		})
	}
}

// TestBuiltinCustomRouteWithEventsPlans: the precondition only refuses a
// built-in custom route while events are off; with an existing or a new bus
// the route plans, on the websocket integration.
func TestBuiltinCustomRouteWithEventsPlans(t *testing.T) {
	t.Parallel()
	dir := copyModule(t)
	terraform.Init(t, options(t, "terraform", dir, nil))
	for name, bus := range map[string]interface{}{
		"new bus":      map[string]interface{}{"create": true},
		"existing bus": map[string]interface{}{"name": existingEventBusARN},
	} {
		t.Run(name, func(t *testing.T) {
			opts := withPlanFile(t, options(t, "terraform", dir, map[string]interface{}{
				"name":      "wst-routes",
				"routes":    map[string]interface{}{"typing": map[string]interface{}{}},
				"event_bus": bus,
			}))
			plan := planShow(t, opts)
			route := planned(t, plan, `aws_apigatewayv2_route.this["typing"]`)
			assert.Equal(t, "typing", route["route_key"])
			assert.NotEmpty(t, environment(t, plan, `aws_lambda_function.this["websocket"]`)["WS_EVENT_BUS_NAME"])
		})
	}
}

// manyTags is n distinct tags.
func manyTags(n int) map[string]interface{} {
	tags := map[string]interface{}{}
	for i := range n {
		tags[fmt.Sprintf("t%02d", i)] = "v"
	}
	return tags
}
