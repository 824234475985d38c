# Namespace and service account of the app. No annotation is needed on the
# service account: the pod identity association is what maps it to the role.

resource "kubernetes_namespace_v1" "app" {
  metadata {
    name = var.app_namespace
  }
}

resource "kubernetes_service_account_v1" "app" {
  metadata {
    name      = var.app_service_account
    namespace = kubernetes_namespace_v1.app.metadata[0].name
  }
}
