// Package cost meters what the gateway costs on AWS: it counts every DynamoDB and SQS request at
// the wire (a proxy in front of the emulators), every Lambda invocation and every HTTP API request
// of fixed scenarios run through the local stack, turns them into the units AWS bills and prices
// them. `make cost` prints the table; the package's test pins the units.
package cost

// Prices are AWS's us-east-1 list prices, in dollars, as of PriceDate. One table, used everywhere.
//
//	DynamoDB on-demand, Standard table class: https://aws.amazon.com/dynamodb/pricing/on-demand/
//	SQS:                https://aws.amazon.com/sqs/pricing/
//	Lambda (arm64):     https://aws.amazon.com/lambda/pricing/
//	API Gateway HTTP:   https://aws.amazon.com/api-gateway/pricing/
//	CloudWatch Logs:    https://aws.amazon.com/cloudwatch/pricing/ (Standard log class, ingestion)
//
// DynamoDB Streams reads made by a Lambda trigger are free (the on-demand page, "DynamoDB
// Streams"), so the fan-out's GetRecords are not billed.
type Prices struct {
	Date                     string
	WriteUnit, ReadUnit      float64 // per request unit
	StorageGBMonth, PITRGBMo float64 // per GB-month of table (and index) size
	SQSStandard, SQSFIFO     float64 // per request (64 KB chunk)
	LambdaRequest            float64
	LambdaGBSecond           float64 // arm64
	HTTPRequest              float64 // HTTP API, first 300 M a month
	LogGB                    float64 // CloudWatch Logs ingestion
}

// ListPrices is the one price table.
func ListPrices() Prices {
	return Prices{
		Date:      "2026-12-06",
		WriteUnit: 0.625 / 1e6, ReadUnit: 0.125 / 1e6,
		StorageGBMonth: 0.25, PITRGBMo: 0.20,
		SQSStandard: 0.40 / 1e6, SQSFIFO: 0.50 / 1e6,
		LambdaRequest: 0.20 / 1e6, LambdaGBSecond: 0.0000133334,
		HTTPRequest: 1.00 / 1e6,
		LogGB:       0.50,
	}
}

// Durations are the billed milliseconds assumed per invocation of each function (the local
// processes' times say nothing about Lambda's): a door verifies and sends one message; the
// worker makes a dozen DynamoDB calls and an echo agent answers at once; a delivery waits for one
// HTTP response from a subscriber (assumed 100 ms); a stream holds its execution while it waits
// for the reader's events (assumed 1 s, the length of an echo run).
func Durations() map[string]int {
	return map[string]int{
		"InboundGenericFunction": 20, "InboundWebhookFunction": 20, "InboundTelegramFunction": 20,
		"InboundBindingFunction": 20, "IntegrationsTriggerFunction": 20,
		"AdapterFunction": 30, "ManagementFunction": 30, "WebWidgetFunction": 30, "WidgetAssetsFunction": 5,
		"WorkerFunction": 100, "FanoutFunction": 40, "DeliveryFunction": 150,
		"EventStreamFunction": 1000, "WebStreamFunction": 1000, "NotFoundFunction": 5, "DeliverySweepFunction": 50,
	}
}
