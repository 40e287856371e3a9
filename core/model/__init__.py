"""From the store's counts (`counts`) to posterior draws (`posterior`): the calibration model
(`fit`, yes/no; `scale`, 1-5 scales; `parts`, `likelihood`), run by NUTS (`nuts`) from a model
compiled once per machine (`cache`, `compiling`, `bundle`), checked (`diagnostics`) and kept
(`kept_fits`); the instant conjugate posterior (`instant`), a kept fit brought up to date
(`reweight`) and the simpler estimators shown beside it (`baselines`)."""
