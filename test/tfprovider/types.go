package main

import (
	tfjson "github.com/hashicorp/terraform-json"
	"github.com/lonegunmanb/terraform-aws-schema/v6/generated/data"
	"github.com/lonegunmanb/terraform-aws-schema/v6/generated/resource"
)

// The resource and data source types the module, its examples and tests use,
// with their real hashicorp/aws v6.0.0 schemas. The list is explicit because
// the schema module's register package parses all ~2,000 schemas at start-up,
// which costs seconds on every one of the many provider launches of a test
// run. A type missing here fails like an unknown type of the real provider
// would ("The provider hashicorp/aws does not support resource type"); add it
// with its generated constructor.
var (
	resourceSchemas = map[string]func() *tfjson.Schema{
		"aws_apigatewayv2_api":                    resource.AwsApigatewayv2ApiSchema,
		"aws_apigatewayv2_integration":            resource.AwsApigatewayv2IntegrationSchema,
		"aws_apigatewayv2_route":                  resource.AwsApigatewayv2RouteSchema,
		"aws_apigatewayv2_route_response":         resource.AwsApigatewayv2RouteResponseSchema,
		"aws_apigatewayv2_deployment":             resource.AwsApigatewayv2DeploymentSchema,
		"aws_apigatewayv2_stage":                  resource.AwsApigatewayv2StageSchema,
		"aws_apigatewayv2_authorizer":             resource.AwsApigatewayv2AuthorizerSchema,
		"aws_apigatewayv2_domain_name":            resource.AwsApigatewayv2DomainNameSchema,
		"aws_apigatewayv2_api_mapping":            resource.AwsApigatewayv2ApiMappingSchema,
		"aws_cloudwatch_log_group":                resource.AwsCloudwatchLogGroupSchema,
		"aws_lambda_function":                     resource.AwsLambdaFunctionSchema,
		"aws_lambda_permission":                   resource.AwsLambdaPermissionSchema,
		"aws_lambda_function_event_invoke_config": resource.AwsLambdaFunctionEventInvokeConfigSchema,
		"aws_iam_role":                            resource.AwsIamRoleSchema,
		"aws_iam_role_policy":                     resource.AwsIamRolePolicySchema,
		"aws_iam_policy":                          resource.AwsIamPolicySchema,
		"aws_iam_role_policy_attachment":          resource.AwsIamRolePolicyAttachmentSchema,
		"aws_dynamodb_table":                      resource.AwsDynamodbTableSchema,
		"aws_cloudwatch_event_rule":               resource.AwsCloudwatchEventRuleSchema,
		"aws_cloudwatch_event_target":             resource.AwsCloudwatchEventTargetSchema,
		"aws_cloudwatch_event_bus":                resource.AwsCloudwatchEventBusSchema,
		"aws_secretsmanager_secret":               resource.AwsSecretsmanagerSecretSchema,
		"aws_secretsmanager_secret_version":       resource.AwsSecretsmanagerSecretVersionSchema,
		"aws_ssm_parameter":                       resource.AwsSsmParameterSchema,
		"aws_kms_key":                             resource.AwsKmsKeySchema,
		"aws_s3_bucket":                           resource.AwsS3BucketSchema,
		"aws_s3_object":                           resource.AwsS3ObjectSchema,
		"aws_route53_record":                      resource.AwsRoute53RecordSchema,
		"aws_sqs_queue":                           resource.AwsSqsQueueSchema,
		"aws_sqs_queue_redrive_allow_policy":      resource.AwsSqsQueueRedriveAllowPolicySchema,
		"aws_lambda_event_source_mapping":         resource.AwsLambdaEventSourceMappingSchema,
		"aws_api_gateway_account":                 resource.AwsApiGatewayAccountSchema,
		"aws_cloudfront_distribution":             resource.AwsCloudfrontDistributionSchema,
		"aws_cloudfront_function":                 resource.AwsCloudfrontFunctionSchema,
		"aws_cloudfront_origin_request_policy":    resource.AwsCloudfrontOriginRequestPolicySchema,
		"aws_cloudwatch_dashboard":                resource.AwsCloudwatchDashboardSchema,
		"aws_cloudwatch_metric_alarm":             resource.AwsCloudwatchMetricAlarmSchema,
		"aws_lambda_invocation":                   resource.AwsLambdaInvocationSchema,
	}
	dataSourceSchemas = map[string]func() *tfjson.Schema{
		"aws_partition":                      data.AwsPartitionSchema,
		"aws_region":                         data.AwsRegionSchema,
		"aws_caller_identity":                data.AwsCallerIdentitySchema,
		"aws_iam_policy_document":            data.AwsIamPolicyDocumentSchema,
		"aws_secretsmanager_random_password": data.AwsSecretsmanagerRandomPasswordSchema,
		"aws_lambda_function":                data.AwsLambdaFunctionSchema,
	}
)
