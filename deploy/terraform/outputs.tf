output "app_role_arn" {
  description = "Role the app's pods receive through EKS Pod Identity."
  value       = aws_iam_role.app.arn
}

output "node_role_arn" {
  description = "Node role; `pod-identity-doctor check` must not resolve to it from a pod."
  value       = aws_iam_role.node.arn
}
