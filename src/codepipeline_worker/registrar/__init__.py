"""The stack's custom resource: registers the custom action type with the configuration properties its work
function declares (CONFIGURATION_PROPERTIES), and removes it with the stack."""
