package trace

// Names of the methods [StandardMethods] returns.
const (
	MethodModel   = "model"     // the profile package's P95
	MethodVPA     = "vpa"       // the VPA recommender with the VPAConfig given (its defaults: CPU first bucket 0.01 core)
	MethodVPAFine = "vpa-0.001" // the same with a CPU first bucket of 0.001 core
	MethodWindow  = "p95-2h×1.2"
)

// StandardMethods returns the forecasters examples/forecast and the tests
// compare, in this order: the model with model, the VPA recommender with
// vpa and the same with a 0.001-core first CPU bucket, and the moving
// window rule with window. The defaults are ModelOptions{},
// DefaultVPAConfig() and DefaultWindowConfig().
func StandardMethods(model ModelOptions, vpa VPAConfig, window WindowConfig) []Method {
	fine := vpa
	fine.CPUFirstBucket = 0.001
	return []Method{
		ModelMethod(MethodModel, model),
		VPAMethod(MethodVPA, vpa),
		VPAMethod(MethodVPAFine, fine),
		WindowMethod(MethodWindow, window),
	}
}

// ModelMethod names a [Model] with opts.
func ModelMethod(name string, opts ModelOptions) Method {
	return Method{Name: name, New: func() (Forecaster, error) { return NewModel(opts) }}
}

// VPAMethod names a [VPA] with cfg.
func VPAMethod(name string, cfg VPAConfig) Method {
	return Method{Name: name, New: func() (Forecaster, error) { return NewVPA(cfg) }}
}

// WindowMethod names a [WindowPercentile] with cfg.
func WindowMethod(name string, cfg WindowConfig) Method {
	return Method{Name: name, New: func() (Forecaster, error) { return NewWindowPercentile(cfg) }}
}
