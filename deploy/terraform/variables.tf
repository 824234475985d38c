variable "region" {
  description = "AWS region of the cluster."
  type        = string
}

variable "cluster_name" {
  description = "Name of the existing EKS cluster."
  type        = string
}

variable "private_subnet_ids" {
  description = "Private subnets for the worker nodes."
  type        = list(string)
}

variable "bucket_name" {
  description = "S3 bucket the app may read."
  type        = string
  default     = "my-app-bucket"
}

variable "app_namespace" {
  description = "Kubernetes namespace of the app."
  type        = string
  default     = "my-app-namespace"
}

variable "app_service_account" {
  description = "Kubernetes service account of the app; the pod identity association maps it to the app's role."
  type        = string
  default     = "my-app-sa"
}
