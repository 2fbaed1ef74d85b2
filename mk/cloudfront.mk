# CloudFront Function tier: functions/*.js unit-tested with Node's built-in
# test runner (no npm packages): each file runs in a `vm` context and its
# handler gets events shaped like CloudFront's documented viewer requests.
CLOUDFRONT_TEST_DIR := $(ROOT)/test/cloudfront

.PHONY: test-cloudfront
TEST_TIERS += test-cloudfront

test-cloudfront: ## CloudFront Functions (functions/*.js) in Node's test runner with CloudFront's event shapes
	cd $(CLOUDFRONT_TEST_DIR) && node --test *.test.mjs
