// The FailoverPool resource as the operator reads it (crds/failoverpool.yaml is the schema), and what the
// proxies report through their admin API.
export {};
