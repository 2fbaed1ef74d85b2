package auth

import (
	"context"
	"encoding/base64"
	"log/slog"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeParameters answers GetParameter like SSM: a SecureString comes back as
// ciphertext unless WithDecryption is set, and an unknown name is
// ParameterNotFound.
type fakeParameters struct {
	values map[string]string
	calls  int
}

func (f *fakeParameters) GetParameter(_ context.Context, in *ssm.GetParameterInput, _ ...func(*ssm.Options)) (*ssm.GetParameterOutput, error) {
	f.calls++
	name := aws.ToString(in.Name)
	v, ok := f.values[name]
	if !ok {
		return nil, &ssmtypes.ParameterNotFound{Message: aws.String("Parameter " + name + " not found.")}
	}
	if !aws.ToBool(in.WithDecryption) {
		v = base64.StdEncoding.EncodeToString([]byte("kms-ciphertext:" + v))
	}
	return &ssm.GetParameterOutput{Parameter: &ssmtypes.Parameter{
		Name: aws.String(name), Type: ssmtypes.ParameterTypeSecureString, Value: aws.String(v), Version: 1,
	}}, nil
}

// fakeSecrets answers GetSecretValue like Secrets Manager for string and
// binary secrets; an unknown id is ResourceNotFoundException.
type fakeSecrets struct {
	strings map[string]string
	binary  map[string][]byte
	calls   int
}

func (f *fakeSecrets) GetSecretValue(_ context.Context, in *secretsmanager.GetSecretValueInput, _ ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error) {
	f.calls++
	id := aws.ToString(in.SecretId)
	out := &secretsmanager.GetSecretValueOutput{ARN: aws.String(id), VersionStages: []string{"AWSCURRENT"}}
	if s, ok := f.strings[id]; ok {
		out.SecretString = aws.String(s)
		return out, nil
	}
	if b, ok := f.binary[id]; ok {
		out.SecretBinary = b
		return out, nil
	}
	return nil, &smtypes.ResourceNotFoundException{Message: aws.String("Secrets Manager can't find the specified secret.")}
}

func envMap(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

const (
	secretARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:ws-jwt-AbCdEf"
	keyARN    = "arn:aws:secretsmanager:us-east-1:123456789012:secret:ws-jwks-GhIjKl"
)

func TestConfigFromEnvSources(t *testing.T) {
	k := testKeys(t)
	pemKey := string(pemPublicKey(t, &k.rsa.PublicKey))
	jwks := string(jwksDocument(t, jwkJSON(t, "ec-1", &k.ec.PublicKey)))
	binarySecret := []byte("\x00\x01binary-secret-of-32-bytes-long\xff")

	tests := []struct {
		name       string
		env        map[string]string
		wantSecret []byte
		// wantKeyIDs lists the kid of every parsed public key.
		wantKeyIDs []string
		wantSSM    int
		wantSM     int
	}{
		{name: "inline secret", env: map[string]string{EnvSecret: testSecret}, wantSecret: []byte(testSecret)},
		{name: "secret from SSM", env: map[string]string{EnvSecretSSMParameter: "/ws/jwt-secret"}, wantSecret: []byte(testSecret), wantSSM: 1},
		{name: "secret from Secrets Manager", env: map[string]string{EnvSecretARN: secretARN}, wantSecret: []byte(testSecret + "-sm"), wantSM: 1},
		{name: "binary secret from Secrets Manager", env: map[string]string{EnvSecretARN: "binary"}, wantSecret: binarySecret, wantSM: 1},
		{name: "inline PEM", env: map[string]string{EnvPublicKey: pemKey}, wantKeyIDs: []string{""}},
		{name: "JWKS from SSM", env: map[string]string{EnvPublicKeySSMParameter: "/ws/jwks"}, wantKeyIDs: []string{"ec-1"}, wantSSM: 1},
		{name: "PEM from Secrets Manager", env: map[string]string{EnvPublicKeySecretARN: keyARN}, wantKeyIDs: []string{""}, wantSM: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			params := &fakeParameters{values: map[string]string{"/ws/jwt-secret": testSecret, "/ws/jwks": jwks}}
			secrets := &fakeSecrets{
				strings: map[string]string{secretARN: testSecret + "-sm", keyARN: pemKey},
				binary:  map[string][]byte{"binary": binarySecret},
			}
			cfg, err := ConfigFromEnv(context.Background(), envMap(tt.env), EnvClients{SSM: params, SecretsManager: secrets})
			require.NoError(t, err)
			assert.Equal(t, tt.wantSecret, cfg.Secret)
			var kids []string
			for _, key := range cfg.PublicKeys {
				kids = append(kids, key.KeyID)
			}
			assert.Equal(t, tt.wantKeyIDs, kids)
			assert.Equal(t, tt.wantSSM, params.calls, "SSM calls")
			assert.Equal(t, tt.wantSM, secrets.calls, "Secrets Manager calls")
		})
	}
}

func TestConfigFromEnvClaimsAndValidation(t *testing.T) {
	cfg, err := ConfigFromEnv(context.Background(), envMap(map[string]string{
		EnvSecret:         testSecret,
		EnvIssuer:         "https://issuer.example",
		EnvAudience:       "wsforge",
		EnvUserClaim:      " email ",
		EnvChannelsClaim:  "rooms",
		EnvLeeway:         "30",
		EnvIdentitySource: "route.request.header.Authorization",
	}), EnvClients{})
	require.NoError(t, err)
	assert.Equal(t, Config{
		Secret: []byte(testSecret), Issuer: "https://issuer.example", Audience: "wsforge",
		UserClaim: "email", ChannelsClaim: "rooms", Leeway: 30 * time.Second,
		IdentitySource: "route.request.header.Authorization",
	}, cfg)

	cfg, err = ConfigFromEnv(context.Background(), envMap(map[string]string{EnvSecret: testSecret}), EnvClients{})
	require.NoError(t, err)
	assert.Equal(t, Config{Secret: []byte(testSecret), Leeway: DefaultLeeway}, cfg, "other defaults are left to NewVerifier")
}

func TestParseLeeway(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"": DefaultLeeway, " ": DefaultLeeway, "5s": 5 * time.Second, "0": 0, "0s": 0, "30": 30 * time.Second,
		" 10 ": 10 * time.Second, "1m30s": 90 * time.Second, "500ms": 500 * time.Millisecond,
	} {
		got, err := ParseLeeway(in)
		require.NoError(t, err, "%q", in)
		assert.Equal(t, want, got, "%q", in)
	}
	for _, in := range []string{"-1", "-5s", "five", "5 s", "1.5", "5x", "99999999999"} {
		_, err := ParseLeeway(in)
		assert.Error(t, err, "%q", in)
	}
}

func TestConfigFromEnvRefusesBadLeewayAndIdentitySource(t *testing.T) {
	for name, env := range map[string]map[string]string{
		"negative leeway":       {EnvSecret: testSecret, EnvLeeway: "-5s"},
		"garbage leeway":        {EnvSecret: testSecret, EnvLeeway: "soon"},
		"cookie identity":       {EnvSecret: testSecret, EnvIdentitySource: "route.request.cookie.token"},
		"two identity sources":  {EnvSecret: testSecret, EnvIdentitySource: "route.request.querystring.token, route.request.header.Authorization"},
		"stage variable source": {EnvSecret: testSecret, EnvIdentitySource: "stageVariables.token"},
	} {
		_, err := ConfigFromEnv(context.Background(), envMap(env), EnvClients{})
		assert.Error(t, err, name)
	}
}

func TestConfigFromEnvEndToEnd(t *testing.T) {
	k := testKeys(t)
	params := &fakeParameters{values: map[string]string{
		"/ws/jwks": string(jwksDocument(t, jwkJSON(t, "rsa-1", &k.rsa.PublicKey), jwkJSON(t, "rsa-2", &k.rsa2.PublicKey))),
	}}
	cfg, err := ConfigFromEnv(context.Background(), envMap(map[string]string{
		EnvPublicKeySSMParameter: "/ws/jwks",
		EnvIssuer:                "https://issuer.example",
		EnvAudience:              "wsforge",
		EnvUserClaim:             "uid",
	}), EnvClients{SSM: params})
	require.NoError(t, err)
	v := mustVerifier(t, cfg)

	id, err := v.Verify(context.Background(), signToken(t, jwt.SigningMethodRS256, k.rsa2,
		claimsWith(func(c jwt.MapClaims) { c["uid"] = "u-77" }), map[string]any{"kid": "rsa-2"}))
	require.NoError(t, err)
	assert.Equal(t, "u-77", id.UserID)
	assert.Equal(t, "private-team-1,private-chat.*", id.Channels)
}

func TestConfigFromEnvErrors(t *testing.T) {
	tests := []struct {
		name     string
		env      map[string]string
		noSSM    bool
		noSM     bool
		wantMsg  string
		wantType any
	}{
		{name: "nothing set", env: map[string]string{EnvIssuer: "x"}, wantMsg: "no key configured; set one of WS_JWT_SECRET, WS_JWT_SECRET_SSM_PARAMETER, WS_JWT_SECRET_ARN, WS_JWT_PUBLIC_KEY, WS_JWT_PUBLIC_KEY_SSM_PARAMETER, WS_JWT_PUBLIC_KEY_SECRET_ARN, WS_JWT_JWKS_URL"},
		{name: "JWKS URL and public key", env: map[string]string{EnvPublicKey: "x", EnvJWKSURL: "https://issuer.example/jwks.json"}, wantMsg: "WS_JWT_PUBLIC_KEY and WS_JWT_JWKS_URL are all set; set exactly one key source"},
		{name: "JWKS URL over http", env: map[string]string{EnvJWKSURL: "http://issuer.example/jwks.json"}, wantMsg: "load JWT config from WS_JWT_JWKS_URL: JWKS URL http://issuer.example/jwks.json: only https is allowed"},
		{name: "unknown token use", env: map[string]string{EnvSecret: testSecret, EnvTokenUse: "refresh"}, wantMsg: `WS_JWT_TOKEN_USE="refresh": want "id" or "access"`},
		{name: "secret and public key", env: map[string]string{EnvSecret: testSecret, EnvPublicKeySecretARN: keyARN}, wantMsg: "WS_JWT_SECRET and WS_JWT_PUBLIC_KEY_SECRET_ARN are all set; set exactly one key source"},
		{name: "two secret sources", env: map[string]string{EnvSecretSSMParameter: "/a", EnvSecretARN: secretARN}, wantMsg: "WS_JWT_SECRET_SSM_PARAMETER and WS_JWT_SECRET_ARN are all set"},
		{name: "missing SSM parameter", env: map[string]string{EnvSecretSSMParameter: "/ws/missing"}, wantMsg: "load JWT config from WS_JWT_SECRET_SSM_PARAMETER: get SSM parameter /ws/missing: ", wantType: new(*ssmtypes.ParameterNotFound)},
		{name: "missing secret", env: map[string]string{EnvPublicKeySecretARN: "arn:aws:secretsmanager:us-east-1:123456789012:secret:gone"}, wantMsg: "load JWT config from WS_JWT_PUBLIC_KEY_SECRET_ARN: get secret arn:aws:secretsmanager:us-east-1:123456789012:secret:gone: ", wantType: new(*smtypes.ResourceNotFoundException)},
		{name: "no SSM client", env: map[string]string{EnvPublicKeySSMParameter: "/ws/jwks"}, noSSM: true, wantMsg: "get SSM parameter /ws/jwks: no SSM client"},
		{name: "no Secrets Manager client", env: map[string]string{EnvSecretARN: secretARN}, noSM: true, wantMsg: "no Secrets Manager client"},
		{name: "empty parameter value", env: map[string]string{EnvSecretSSMParameter: "/ws/empty"}, wantMsg: "load JWT config from WS_JWT_SECRET_SSM_PARAMETER: the key is empty"},
		{name: "public key that is not a key", env: map[string]string{EnvPublicKey: "hello"}, wantMsg: "load JWT config from WS_JWT_PUBLIC_KEY: parse public keys: no PEM block"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var params ParameterGetter = &fakeParameters{values: map[string]string{"/ws/empty": ""}}
			var secrets SecretGetter = &fakeSecrets{}
			if tt.noSSM {
				params = nil
			}
			if tt.noSM {
				secrets = nil
			}
			cfg, err := ConfigFromEnv(context.Background(), envMap(tt.env), EnvClients{SSM: params, SecretsManager: secrets})
			require.ErrorContains(t, err, tt.wantMsg)
			assert.Equal(t, Config{}, cfg)
			if tt.wantType != nil {
				assert.ErrorAs(t, err, tt.wantType, "wraps the SDK error")
			}
		})
	}
}

func TestConfigFromEnvAsksSSMToDecrypt(t *testing.T) {
	params := &fakeParameters{values: map[string]string{"/ws/jwt-secret": testSecret}}
	cfg, err := ConfigFromEnv(context.Background(), envMap(map[string]string{EnvSecretSSMParameter: " /ws/jwt-secret "}), EnvClients{SSM: params})
	require.NoError(t, err)
	assert.Equal(t, []byte(testSecret), cfg.Secret, "a ciphertext here means WithDecryption was not set")
}

func TestConfigFromEnvJWKSURL(t *testing.T) {
	k := testKeys(t)
	const issuer = "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbCdEfGhI"
	srv := newJWKSServer(t, jwksDocument(t, jwkJSON(t, "k1", &k.rsa.PublicKey)))
	cfg, err := ConfigFromEnv(context.Background(), envMap(map[string]string{
		EnvJWKSURL:  " " + srv.URL() + " ",
		EnvIssuer:   issuer,
		EnvAudience: "client-1",
		EnvTokenUse: "access",
	}), EnvClients{HTTP: srv.Client(), Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	require.NotNil(t, cfg.RemoteKeys)
	assert.Equal(t, srv.URL(), cfg.RemoteKeys.URL())
	assert.Equal(t, TokenUseAccess, cfg.TokenUse)
	assert.EqualValues(t, 1, srv.fetches.Load(), "fetched at cold start")

	v := mustVerifier(t, cfg)
	id, err := v.Verify(context.Background(), signToken(t, jwt.SigningMethodRS256, k.rsa, jwt.MapClaims{
		"sub": "u-1", "iss": issuer, "client_id": "client-1", "token_use": "access", "exp": testNow.Add(time.Hour).Unix(),
	}, map[string]any{"kid": "k1"}))
	require.NoError(t, err)
	assert.Equal(t, "u-1", id.UserID)

	srv.failing.Store(true)
	_, err = ConfigFromEnv(context.Background(), envMap(map[string]string{EnvJWKSURL: srv.URL()}), EnvClients{HTTP: srv.Client()})
	assert.ErrorContains(t, err, "load JWT config from WS_JWT_JWKS_URL: fetch JWKS "+srv.URL()+": status 503", "an unreachable key set fails the cold start")
}

func TestSecretFromEnv(t *testing.T) {
	params := &fakeParameters{values: map[string]string{"/app/pusher-secret": "from-ssm"}}
	secrets := &fakeSecrets{strings: map[string]string{"arn:aws:secretsmanager:eu-west-1:123456789012:secret:pusher": "from-secrets-manager"}}
	clients := EnvClients{SSM: params, SecretsManager: secrets}
	const inline, ssmName, arn = "APP_SECRET", "APP_SECRET_SSM_PARAMETER", "APP_SECRET_ARN"
	read := func(env map[string]string) ([]byte, bool, error) {
		return SecretFromEnv(context.Background(), func(k string) string { return env[k] }, clients, inline, ssmName, arn)
	}

	got, found, err := read(map[string]string{ssmName: "/app/pusher-secret"})
	require.NoError(t, err)
	assert.True(t, found)
	assert.Equal(t, "from-ssm", string(got), "SSM SecureStrings are read with decryption")

	got, _, err = read(map[string]string{arn: "arn:aws:secretsmanager:eu-west-1:123456789012:secret:pusher"})
	require.NoError(t, err)
	assert.Equal(t, "from-secrets-manager", string(got))

	got, _, err = read(map[string]string{inline: "plain"})
	require.NoError(t, err)
	assert.Equal(t, "plain", string(got))

	_, found, err = read(nil)
	require.NoError(t, err)
	assert.False(t, found, "nothing set is not an error here: the caller decides")

	_, _, err = read(map[string]string{inline: "plain", ssmName: "/app/pusher-secret"})
	assert.ErrorContains(t, err, "APP_SECRET and APP_SECRET_SSM_PARAMETER are all set")

	_, _, err = read(map[string]string{ssmName: "/app/missing"})
	assert.ErrorContains(t, err, "load secret from APP_SECRET_SSM_PARAMETER: get SSM parameter /app/missing")
}
